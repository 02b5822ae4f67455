"""The application layer: every job as a plain function, a request in, a value out.

`train`, `retrain`, `compare` (and the project's config lookup, `init`) are called by the
command line, the demo, `MLproject` (through the command line), the notebooks, the
benchmarks and the tests alike: the training sequence exists once, here. A job reports its
progress through a `Progress` (`jobs.progress`): the command line's prints, a notebook's
default records the warnings and shows nothing.
"""

from leadscore.jobs.compare import Compared, CompareRequest, compare
from leadscore.jobs.progress import Progress, Recorded
from leadscore.jobs.train import Retrained, Training, TrainRequest, retrain, train

__all__ = [
    "CompareRequest",
    "Compared",
    "Progress",
    "Recorded",
    "Retrained",
    "TrainRequest",
    "Training",
    "compare",
    "retrain",
    "train",
]
