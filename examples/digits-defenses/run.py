"""Run the digits-defenses example (pipeline.yaml) on a testbed.

train (undefended, with Gaussian augmentation, adversarially) -> fgm and pgd against each
model -> infer (the undefended model also behind feature squeezing, JPEG compression and
spatial smoothing) -> report: one table, defense x attack. Exits 1 if a job failed.

    python examples/digits-defenses/run.py --address http://127.0.0.1:5000
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import _driver  # noqa: E402

# The attack entry points are those of digits-evasion, shipped in this archive too.
EVASION = HERE.parent / "digits-evasion"
BORROWED = [EVASION / "fgm.py", EVASION / "pgd.py"]
EPS = 0.15


def run(address: str, queue: str = _driver.DEFAULT_QUEUE,
        experiment: str = "digits-defenses", eps: float = EPS, epochs: int = 10,
        seed: int = 0, timeout: str = "1h", out=print) -> _driver.PipelineOutcome:
    def change(definition: dict) -> None:
        stages = definition["stages"]
        # adversarial training against the budget of the attacks
        stages["train"]["params"].update(epochs=epochs, seed=seed, adv_eps=eps)
        stages["attack"]["params"].update(eps=eps, seed=seed)  # pgd: steps of eps / 4

    return _driver.run_pipeline(HERE, address, queue, experiment, timeout, change,
                                extra_files=BORROWED, out=out)


def main() -> int:
    parser = _driver.argument_parser(__doc__.splitlines()[0], "digits-defenses")
    parser.add_argument("--eps", type=float, default=EPS,
                        help="L-inf budget of the attacks (default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    outcome = run(args.address, args.queue, args.experiment, args.eps, args.epochs,
                  args.seed, args.timeout)
    return _driver.finish_pipeline(outcome, args.address)


if __name__ == "__main__":
    _driver.main_guard(main)
