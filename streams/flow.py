"""Flow control that never drops records fetched while the flow is running.

After a rebalance, Faust resumes the flow into the stream queues once before
it seeks the stream partitions to their committed offsets, and once more
after the seek. Every resume of mode's flow control clears the queues. A
record fetched between the seek and the second resume was therefore dropped
unprocessed while its offset counted as read, and the commit then went past
it: an accepted assignment left no trace at all (the crash suite showed it).

Clearing belongs to leaving a suspension, when the queues may hold records
of the previous assignment; a resume while the flow already runs has nothing
stale to clear.
"""

from __future__ import annotations

import faust
from mode.utils.objects import cached_property
from mode.utils.queues import FlowControlEvent


class SteadyFlowControl(FlowControlEvent):
    """Clears the stream queues only when the flow leaves a suspension."""

    def resume(self) -> None:
        """Resume the flow; clear the queues only if it was suspended."""
        if self.is_active():
            return
        super().resume()


class ContractflowApp(faust.App):
    """A Faust app whose flow control is `SteadyFlowControl`."""

    @cached_property
    def flow_control(self) -> FlowControlEvent:
        """Flow control of the stream queues."""
        return SteadyFlowControl(loop=self.loop)
