"""TensorBoardLogger mirrors the Trainer's records as scalars."""

from tiny_tasks import Regression

from recur.training import TrainConfig, Trainer
from recur.training.tensorboard import TensorBoardLogger


class FakeWriter:
    def __init__(self, log_dir):
        self.log_dir, self.scalars, self.flushes = log_dir, [], 0

    def add_scalar(self, name, value, step):
        self.scalars.append((name, value, step))

    def flush(self):
        self.flushes += 1

    def close(self):
        pass


def test_every_numeric_record_field_becomes_a_scalar(tmp_path):
    logger = TensorBoardLogger(tmp_path / "tb", writer_factory=FakeWriter)
    config = TrainConfig(epochs=2, lr=0.1, quiet=True, log_every=2, monitor="loss", mode="min")
    Trainer(Regression(), config, tmp_path / "run", callbacks=[logger]).fit()
    names = {name for name, _, _ in logger.writer.scalars}
    assert {"train/loss", "train/lr", "train/grad_norm", "valid/valid_loss"} <= names
    assert not any(name.endswith(("/step", "/epoch", "/best")) for name in names)
    steps = [step for name, _, step in logger.writer.scalars if name == "train/loss"]
    assert steps == sorted(steps) and steps[0] > 0
