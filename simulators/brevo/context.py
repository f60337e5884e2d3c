"""What every Brevo route handler receives: the account state, the run's faults and options."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from simulators.brevo.state import BrevoState
from simulators.harness import Faults, JobClock

# `/contacts/batch` was announced as retired on 2026-10-30 ("may stop functioning"); today's date
# in the project is after that, so the simulator answers 404 for it unless told otherwise.
BATCH_RETIREMENT_DATE = "2026-10-30"


@dataclass
class Options:
    """Vendor-specific switches of one simulator run (all documented in `simulators.brevo.build`)."""

    batch_retired: bool = True
    too_early_seconds: float = 2.0
    import_max_bytes: int = 10_000_000
    job_clock: JobClock = field(default_factory=lambda: JobClock(queued_seconds=0.2, processing_seconds=0.5))
    call_notify_url: bool = True


@dataclass
class Context:
    state: BrevoState
    faults: Faults
    options: Options
    rng: random.Random = field(default_factory=lambda: random.Random(4))
