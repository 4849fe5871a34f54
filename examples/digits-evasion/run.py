"""Run the digits-evasion example on a testbed through the Dioptra client.

train -> fgm and pgd at each eps -> infer on each adversarial set -> report. Prints one
line per job state change, then the robustness table; exits 1 if a job failed.

    python examples/digits-evasion/run.py --address http://127.0.0.1:5000
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import _driver  # noqa: E402
from _driver import Step  # noqa: E402

EPS = (0.05, 0.1, 0.2, 0.3)


def steps(eps=EPS, epochs: int = 10, seed: int = 0, pgd_iter: int = 10) -> list[Step]:
    train = Step("train", "train", {"epochs": epochs, "seed": seed})
    chain, infers = [train], []
    for attack in ("fgm", "pgd"):
        for e in eps:
            params = {"model_run_id": train, "eps": e, "seed": seed}
            if attack == "pgd":
                params.update(eps_step=e / 4, max_iter=pgd_iter)
            adv = Step(f"{attack} eps={e:g}", attack, params, after=train)
            infer = Step(f"infer {attack} eps={e:g}", "infer",
                         {"model_run_id": train, "adv_run_id": adv}, after=adv)
            chain += [adv, infer]
            infers.append(infer)
    # dependsOn names one job: the driver waits for the other infer runs itself.
    chain.append(Step("report", "report", {"runs": infers}, after=infers[-1]))
    return chain


def run(address: str, queue: str = _driver.DEFAULT_QUEUE, experiment: str = "digits-evasion",
        eps=EPS, epochs: int = 10, seed: int = 0, timeout: str = "1h",
        out=print) -> _driver.Outcome:
    return _driver.run_example(HERE, steps(eps, epochs, seed), address, queue, experiment,
                               timeout=timeout, out=out)


def main() -> int:
    parser = _driver.argument_parser(__doc__.splitlines()[0], "digits-evasion")
    parser.add_argument("--eps", default=",".join(f"{e:g}" for e in EPS),
                        help="comma-separated attack budgets (default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    eps = [float(e) for e in args.eps.split(",")]
    outcome = run(args.address, args.queue, args.experiment, eps, args.epochs, args.seed,
                  args.timeout)
    return _driver.finish(outcome)


if __name__ == "__main__":
    _driver.main_guard(main)
