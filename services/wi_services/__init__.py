"""The platform services that ship with WI, as plugins of the decision engine (``wi.engine``): the VM
allocator, the Spot/Harvest manager and the LLM reconfigurer. Each registers in the entry-point group
``wi.services`` (see pyproject.toml); ``wi up --services NAME,...`` runs them.
"""
