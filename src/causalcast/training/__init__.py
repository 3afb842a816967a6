"""Training: the loop (trainer.py), checkpoints (checkpoint.py), fold data (data.py), the
self-contained job function `run_job` (job.py, the one function that starts a job), the run
description `RunSpec` (plan.py), every profile (profiles.py) and the one executor behind every
entry point, `runner.Executor` (inline, process pool or Ray backends)."""

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
