"""Platform services that act on hints and platform events (allocator, Spot/Harvest, LLM)."""
