"""Training: the loop (trainer.py), checkpoints (checkpoint.py), fold data (data.py) and the
self-contained job function `run_job` (job.py) that runners map over workers."""

from causalcast.training.job import PROFILES, JobResult, JobSpec, run_job
from causalcast.training.trainer import (
    TrainConfig,
    Trainer,
    TrainHooks,
    TrainingFailed,
    TrainingInterrupted,
)

__all__ = ["PROFILES", "JobResult", "JobSpec", "TrainConfig", "TrainHooks", "Trainer",
           "TrainingFailed", "TrainingInterrupted", "run_job"]
