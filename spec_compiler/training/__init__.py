"""Training: `specc train` / `Model.train()` and `specc evaluate` / `Model.evaluate()`.

- data.py: loaders (bundled digits, .npz, .npy pairs, CSV numbers or text, image
  folders, MNIST IDX), adaptation to the spec's input, checks;
- tokenizer.py: the built-in text tokenizer (vocabulary saved in preprocess.json);
- losses.py: losses (fused on logits where stable) and metrics;
- augment.py: vectorized image augmentation;
- trainer.py: the loop (schedules, clipping, early stopping, checkpoints, resume, DDP);
- runs.py: the run folder, written atomically; progress.py: bars and lines;
- ddp.py: torch.distributed under torchrun; evaluate.py: evaluation of a run.
"""

from .evaluate import evaluate
from .trainer import TrainingInterrupted, TrainResult, train

__all__ = ["TrainResult", "TrainingInterrupted", "evaluate", "train"]
