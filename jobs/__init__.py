"""The application layer: every job as a plain function, a request in, a value out.

`train`, `retrain`, `compare`, `score`, `monitor`, the hand-off experiments (`jobs.experiment`)
(and the project's config lookup, `init`) are called by the
command line, the demo, `MLproject` (through the command line), the notebooks, the
benchmarks and the tests alike: the training sequence exists once, here. A job reports its
progress through a `Progress` (`jobs.progress`): the command line's prints, a notebook's
default records the warnings and shows nothing.
"""

from leadscore.jobs.compare import Compared, CompareRequest, compare
from leadscore.jobs.monitor import Monitored, MonitorRequest, monitor
from leadscore.jobs.progress import Progress, Recorded
from leadscore.jobs.score import Scored, ScoreRequest, score
from leadscore.jobs.train import Retrained, Training, TrainRequest, retrain, train

__all__ = [
    "CompareRequest",
    "Compared",
    "Monitored",
    "MonitorRequest",
    "Progress",
    "Recorded",
    "Retrained",
    "Scored",
    "ScoreRequest",
    "TrainRequest",
    "Training",
    "compare",
    "monitor",
    "retrain",
    "score",
    "train",
]
