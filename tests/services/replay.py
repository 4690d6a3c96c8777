"""A restart's replay as the runner does one: decisions recorded in a real decision log and read back."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from wi.database import create_db_engine, migrate
from wi.engine import Decision, DecisionLog


def through_the_log(decisions: Sequence[Decision], database_url: str) -> list[Decision]:
    """The service's decisions as a restart reads them: recorded (their detail as JSON), in log order."""
    engine = create_db_engine(database_url)
    migrate(engine)
    log = DecisionLog(engine)
    with log.turn(decisions[0].service, 0) as turn:
        turn.record(decisions, datetime(2026, 11, 22, tzinfo=UTC))
    read = log.all_for(decisions[0].service)
    engine.dispose()
    return read
