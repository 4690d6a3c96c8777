"""``wi imds``: an agent a workload runs beside itself that serves its instance's WI notices the way the
clouds' metadata services do, so that code written for AWS, Azure or GCE reads them unchanged.

- AWS (IMDSv2): ``/latest/meta-data/spot/instance-action``, ``.../spot/termination-time`` and
  ``.../events/maintenance/scheduled``;
- Azure: ``/metadata/scheduledevents`` (GET, and POST ``StartRequests``, which acks the notice in WI);
- GCE: ``/computeMetadata/v1/instance/maintenance-event`` and ``.../preempted``, with ``wait_for_change``.

Needs the ``imds`` extra (Starlette and uvicorn): ``pip install '.[imds]'``.
"""

from ._agent import DEFAULT_HOST, DEFAULT_PORT, ImdsAgent
from ._cli import main
from ._notices import InstanceNotices

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "ImdsAgent", "InstanceNotices", "main"]
