"""A small policy-gradient learner configured by config files, for wrappers/run_learning.py.

Usage: ``python examples/learning/learner.py MAIN_CONFIG``. The main config (written by
run_learning.py, in the shape of the template index) maps config names to config files
(``env_config``, ``rl_config``, ``reward_config``; see templates/learning/). Beside it,
``run_info.json`` says where outputs go (``output_dir``, ``log_dir``, ``checkpoint_dir``)
and ``resume_from``: a directory holding the previous iteration's checkpoint, or null.

The task is a contextual bandit: observe ``x`` (with noise), output an action near
``M x``. A Gaussian MLP policy (``policy.net_arch``) is trained with REINFORCE and Adam for
``rl_config.train_steps`` steps per invocation. The learner appends to
``<output_dir>/progress.csv`` (columns ``step``, ``time/total_timesteps``,
``rollout/ep_rew_mean``, ``train/std``) and saves ``<checkpoint_dir>/checkpoint.json``
(weights, Adam state, step, random state), so invocations chained through ``resume_from``
train exactly like one long run. On SIGTERM it saves a checkpoint and exits with code 3.
numpy only; a run of a few hundred steps takes well under a second.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import sys
import tempfile
from pathlib import Path
from types import FrameType
from typing import Any

import numpy as np

CHECKPOINT = "checkpoint.json"
PROGRESS = "progress.csv"
COLUMNS = ("step", "time/total_timesteps", "rollout/ep_rew_mean", "train/std")
RESUME_EXIT_CODE = 3

Array = np.ndarray[Any, np.dtype[np.float64]]


def load_configs(main_path: Path) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The run information beside the main config, and every config file it names."""
    main: dict[str, str] = json.loads(main_path.read_text(encoding="utf-8"))
    info: dict[str, Any] = json.loads((main_path.parent / "run_info.json").read_text("utf-8"))
    configs = {
        name: json.loads(Path(path).read_text(encoding="utf-8")) for name, path in main.items()
    }
    return info, configs


class Task:
    """Observe ``x + noise``, act near ``M x``; the reward follows ``reward_config``."""

    def __init__(self, env: dict[str, Any], reward: dict[str, Any]) -> None:
        self.obs_dim = int(env["obs_dim"])
        self.action_dim = int(env["action_dim"])
        self.obs_noise = float(env["obs_noise"])
        task_rng = np.random.default_rng(int(env["task_seed"]))
        self.matrix = task_rng.standard_normal((self.action_dim, self.obs_dim))
        self.matrix /= np.sqrt(self.obs_dim)
        self.distance_weight = float(reward["distance_weight"])
        self.action_penalty = float(reward["action_penalty"])
        self.threshold = float(reward["success"]["threshold"])
        self.bonus = float(reward["success"]["bonus"])

    def contexts(self, rng: np.random.Generator, n: int) -> tuple[Array, Array]:
        x = rng.standard_normal((n, self.obs_dim))
        return x + self.obs_noise * rng.standard_normal(x.shape), x @ self.matrix.T

    def reward(self, actions: Array, targets: Array) -> Array:
        dist2 = np.sum((actions - targets) ** 2, axis=1)
        success = np.sqrt(dist2) < self.threshold
        penalty = self.action_penalty * np.sum(actions**2, axis=1)
        result: Array = -self.distance_weight * dist2 - penalty + self.bonus * success
        return result


class Learner:
    """REINFORCE with a Gaussian MLP policy and Adam; state saved to and loaded from JSON."""

    def __init__(self, rl: dict[str, Any], task: Task, seed: int) -> None:
        policy, opt = rl["policy"], rl["optimizer"]
        self.task = task
        self.batch_size = int(rl["batch_size"])
        self.log_interval = int(rl["log_interval"])
        self.normalize = bool(rl["normalize_advantage"])
        self.relu = policy["activation"] == "relu"
        self.learn_std = bool(policy["learn_std"])
        self.lr = float(opt["lr"])
        self.beta1, self.beta2 = (float(b) for b in opt["betas"])
        self.eps = float(opt["eps"])
        self.max_grad_norm = float(opt["max_grad_norm"])
        self.rng = np.random.default_rng(seed)
        sizes = [task.obs_dim, *(int(n) for n in policy["net_arch"]), task.action_dim]
        self.params: list[Array] = []
        for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True):
            self.params.append(self.rng.standard_normal((n_in, n_out)) / np.sqrt(n_in))
            self.params.append(np.zeros(n_out))
        self.params.append(np.full(task.action_dim, float(policy["log_std_init"])))
        self.m = [np.zeros_like(p) for p in self.params]
        self.v = [np.zeros_like(p) for p in self.params]
        self.step = 0

    def _forward(self, obs: Array) -> tuple[Array, list[Array]]:
        hidden = [obs]
        out = obs
        n_layers = (len(self.params) - 1) // 2
        for i in range(n_layers):
            out = out @ self.params[2 * i] + self.params[2 * i + 1]
            if i < n_layers - 1:
                out = np.maximum(out, 0.0) if self.relu else np.tanh(out)
                hidden.append(out)
        return out, hidden

    def _gradients(self, hidden: list[Array], grad_out: Array, grad_log_std: Array) -> list[Array]:
        grads: list[Array] = [grad_log_std]
        grad = grad_out
        n_layers = (len(self.params) - 1) // 2
        for i in reversed(range(n_layers)):
            grads[:0] = [hidden[i].T @ grad, grad.sum(axis=0)]
            if i > 0:
                grad = grad @ self.params[2 * i].T
                grad = grad * (hidden[i] > 0) if self.relu else grad * (1.0 - hidden[i] ** 2)
        return grads

    def train_step(self) -> tuple[float, float]:
        """One policy-gradient update; returns the batch's mean reward and the mean std."""
        obs, targets = self.task.contexts(self.rng, self.batch_size)
        mean, hidden = self._forward(obs)
        std = np.exp(self.params[-1])
        noise = self.rng.standard_normal(mean.shape)
        rewards = self.task.reward(mean + std * noise, targets)
        adv = rewards - rewards.mean()
        if self.normalize:
            adv = adv / (rewards.std() + 1e-8)
        grad_out = -adv[:, None] * noise / std / self.batch_size
        grad_log_std = -np.mean(adv[:, None] * (noise**2 - 1.0), axis=0)
        if not self.learn_std:
            grad_log_std = np.zeros_like(grad_log_std)
        self._adam(self._gradients(hidden, grad_out, grad_log_std))
        self.step += 1
        return float(rewards.mean()), float(std.mean())

    def _adam(self, grads: list[Array]) -> None:
        norm = float(np.sqrt(sum(float(np.sum(g**2)) for g in grads)))
        scale = min(1.0, self.max_grad_norm / (norm + 1e-12))
        t = self.step + 1
        for p, g, m, v in zip(self.params, grads, self.m, self.v, strict=True):
            g = g * scale
            m *= self.beta1
            m += (1.0 - self.beta1) * g
            v *= self.beta2
            v += (1.0 - self.beta2) * g**2
            m_hat = m / (1.0 - self.beta1**t)
            v_hat = v / (1.0 - self.beta2**t)
            p -= self.lr * m_hat / (np.sqrt(v_hat) + self.eps)

    def state(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "params": [p.tolist() for p in self.params],
            "adam_m": [m.tolist() for m in self.m],
            "adam_v": [v.tolist() for v in self.v],
            "rng": self.rng.bit_generator.state,
        }

    def load(self, state: dict[str, Any]) -> None:
        shapes = [p.shape for p in self.params]
        saved = [np.asarray(p, dtype=np.float64) for p in state["params"]]
        if [p.shape for p in saved] != shapes:
            raise ValueError("checkpoint does not match the policy's net_arch")
        self.params = saved
        self.m = [np.asarray(m, dtype=np.float64) for m in state["adam_m"]]
        self.v = [np.asarray(v, dtype=np.float64) for v in state["adam_v"]]
        self.step = int(state["step"])
        self.rng.bit_generator.state = state["rng"]


def write_json_atomic(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh)
    os.replace(tmp, path)


class Stop:
    """Set by SIGTERM: finish the current step, save, exit for resume."""

    requested = False

    @classmethod
    def handler(cls, _signum: int, _frame: FrameType | None) -> None:
        cls.requested = True


def train(main: dict[str, Any], configs: dict[str, dict[str, Any]]) -> int:
    """Train ``train_steps`` steps from the checkpoint in ``resume_from``; return exit code."""
    rl = configs["rl_config"]
    task = Task(configs["env_config"], configs["reward_config"])
    learner = Learner(rl, task, int(main.get("seed") or 0))
    if main.get("resume_from"):
        path = Path(main["resume_from"]) / CHECKPOINT
        learner.load(json.loads(path.read_text(encoding="utf-8")))
    output = Path(main["output_dir"])
    output.mkdir(parents=True, exist_ok=True)
    progress = output / PROGRESS
    new_file = not progress.exists()
    end = learner.step + int(rl["train_steps"])
    reward = float("nan")
    with open(progress, "a", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        if new_file:
            writer.writerow(COLUMNS)
        while learner.step < end and not Stop.requested:
            reward, std = learner.train_step()
            if learner.step % learner.log_interval == 0 or learner.step == end or Stop.requested:
                writer.writerow([learner.step, learner.step * learner.batch_size, reward, std])
    write_json_atomic(Path(main["checkpoint_dir"]) / CHECKPOINT, learner.state())
    log = Path(main["log_dir"]) / "train.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a", encoding="utf-8") as fh:
        fh.write(f"step {learner.step}: mean reward {reward:.6g}\n")
    return RESUME_EXIT_CODE if Stop.requested else 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: learner.py MAIN_CONFIG", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, Stop.handler)
    main_config, configs = load_configs(Path(args[0]))
    return train(main_config, configs)


if __name__ == "__main__":
    sys.exit(main())
