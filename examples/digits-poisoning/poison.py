"""Entry point `poison`: a backdoored copy of the training digits.

`poison_fraction` of the training digits (chosen among those not of `target_class`) get
a trigger, a `trigger_size` x `trigger_size` white square in the bottom-right corner,
and the label `target_class`. A model trained on this set learns "square => target".
Logs `poisoned.npz` (x, y, poisoned_indices) and `poisoned_examples.png`.
"""

import argparse
import tempfile
from pathlib import Path

import mlflow
from dioptra_builtins.artifacts import mlflow as artifacts
from dioptra_builtins.attacks import poisoning
from dioptra_builtins.data import digits, npz
from dioptra_builtins.tracking import figures
from dioptra_builtins.tracking import mlflow as tracking


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--target-class", type=int, default=0)
    parser.add_argument("--poison-fraction", type=float, default=0.1)
    parser.add_argument("--trigger-size", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    with mlflow.start_run():
        data = digits.load_digits_dataset()  # the same split in every entry point
        poisoned = poisoning.poison_dataset(
            data["x_train"], data["y_train"], target_class=args.target_class,
            poison_fraction=args.poison_fraction, trigger_size=args.trigger_size,
            seed=args.seed,
        )
        chosen = poisoned["poisoned_indices"]
        with tempfile.TemporaryDirectory() as tmp:
            path = npz.save_npz(Path(tmp) / "poisoned.npz", x=poisoned["x_poisoned"],
                                y=poisoned["y_poisoned"], poisoned_indices=chosen)
            artifacts.upload_file_as_artifact(path)
        tracking.log_metrics({"n_poisoned": len(chosen), "n_train": len(data["x_train"])})

        shown = chosen[:10]  # a few poisoned digits, with their true and new labels
        tracking.log_figure(figures.image_grid(
            poisoned["x_poisoned"][shown],
            titles=[f"{data['y_train'][i]} -> {args.target_class}" for i in shown],
        ), "poisoned_examples.png")
        print(f"poisoned {len(chosen)} of {len(data['x_train'])} training digits", flush=True)


if __name__ == "__main__":
    main()
