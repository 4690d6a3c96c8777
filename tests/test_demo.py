"""``wi demo``, as ``make demo`` runs it: every service acts, every workload reacts, and it exits 0."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

WI = Path(sys.executable).parent / "wi"


async def test_the_demo_shows_each_service_deciding_and_each_workload_reacting(tmp_path: Path) -> None:
    process = await asyncio.create_subprocess_exec(
        str(WI),
        "demo",
        "--data-dir",
        str(tmp_path),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    text = output.decode()
    assert process.returncode == 0, text
    assert "Traceback" not in text, text
    for line in (
        "  Dashboard, live while the demo runs: http://127.0.0.1:",
        "allocator     place: shop: placed on regular",
        "spot-harvest  offer: acme/storefront: evictable offer",
        "web service   declined",
        "spot-harvest  notify: acme/nightly-etl/etl-",
        "batch job     checkpoint saved; acked",
        "spot-harvest  evict: ",
        "llm           cap: use1-gpu: power cap, budget 11000 W",
        "code-llm      power event power_cap in use1-gpu",
        "chat-llm      acked: ready now",
        "Summary:",
        "every LLM SLO kept",
    ):
        assert line in text, f"{line!r} missing from:\n{text}"
