"""A deployment's whole life in the allocator: placed, scaled out and in, ended; what it frees is free."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from wi_services.allocator import VmAllocator

from tests.services.fleets import write_small_fleet
from wi.contract import DeploymentEnd, DeploymentRequest, DeploymentScale, Message, Placement
from wi.engine import Decision, InstancePlaced, InstanceReleased, Inventory, ServiceContext, View, load_fleet

NOW = datetime(2026, 11, 22, 12, tzinfo=UTC)
WHO = {"tenant": "acme", "workload": "web"}


class Platform:
    """The allocator and the inventory its decisions change, as the runner keeps them."""

    def __init__(self, fleet: Path) -> None:
        self.allocator = VmAllocator(ServiceContext(load_fleet(fleet)))
        self.inventory = Inventory()
        self.now = NOW

    def send(self, message: Message) -> Decision:
        self.now += timedelta(seconds=1)
        self.inventory.advance(self.now)
        [decision] = self.allocator.decide(message, View({}, self.inventory), self.now)
        self.inventory.apply(decision.changes)
        self.inventory.advance(self.now)
        return decision

    def instances(self, deployment: str) -> list[str]:
        return [i.instance for i in self.inventory.of_deployment("acme", "web", deployment)]


def _request(deployment: str, instances: int, cores: int = 16) -> DeploymentRequest:
    return DeploymentRequest(**WHO, deployment=deployment, instances=instances, cores=cores, memory_gb=8)


def test_scaling_out_places_more_of_the_size_asked_and_numbers_never_repeat(tmp_path: Path) -> None:
    platform = Platform(write_small_fleet(tmp_path / "fleet.json", "regular", servers=4, fault_domains=2))
    platform.send(_request("api", 2, cores=8))
    out = platform.send(DeploymentScale(**WHO, deployment="api", instances=4))
    assert out.action == "place" and [c.instance for c in out.changes] == ["api-2", "api-3"]
    assert {c.cores for c in out.changes if isinstance(c, InstancePlaced)} == {8}
    notice = out.notices[0]
    assert isinstance(notice, Placement) and notice.instances is not None and len(notice.instances) == 2

    scaled_in = platform.send(DeploymentScale(**WHO, deployment="api", instances=1))
    assert scaled_in.action == "release"
    assert [c.instance for c in scaled_in.changes] == ["api-1", "api-2", "api-3"], "the newest go"
    assert platform.instances("api") == ["api-0"]
    assert platform.send(DeploymentScale(**WHO, deployment="api", instances=2)).changes[0].instance == "api-4"


def test_what_an_end_or_a_scale_in_releases_can_be_placed_again(tmp_path: Path) -> None:
    platform = Platform(write_small_fleet(tmp_path / "fleet.json", "regular", servers=2, fault_domains=2))
    assert platform.send(_request("big", 2, cores=64)).action == "place"
    full = platform.send(_request("other", 1, cores=64))
    assert full.action == "reject", "two 64-core servers, both booked"

    ended = platform.send(DeploymentEnd(**WHO, deployment="big"))
    assert [c.instance for c in ended.changes] == ["big-0", "big-1"]
    assert all(isinstance(c, InstanceReleased) and c.why == "deployment ended" for c in ended.changes)
    assert platform.instances("big") == [] and sum(u.cores for u in platform.inventory.use.values()) == 0
    assert platform.send(_request("other", 2, cores=64)).action == "place"

    platform.send(DeploymentScale(**WHO, deployment="other", instances=1))
    assert platform.send(_request("third", 1, cores=64)).action == "place", "the scale-in freed a server"


def test_scaling_out_what_runs_nothing_is_rejected_with_a_notice_and_ending_it_releases_nothing(
    tmp_path: Path,
) -> None:
    platform = Platform(write_small_fleet(tmp_path / "fleet.json", "regular", servers=2, fault_domains=2))
    rejected = platform.send(DeploymentScale(**WHO, deployment="ghost", instances=3))
    notice = rejected.notices[0]
    assert rejected.action == "reject" and isinstance(notice, Placement) and notice.outcome == "rejected"
    assert "send a deployment request" in (notice.reason or "")
    ended = platform.send(DeploymentEnd(**WHO, deployment="ghost"))
    assert ended.action == "release" and ended.changes == () and ended.notices == ()
