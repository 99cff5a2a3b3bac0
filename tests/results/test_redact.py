"""What a failure reason may say in the files others can read."""

from __future__ import annotations

import pytest

from hpoptim.results.redact import redact


@pytest.mark.parametrize(
    ("line", "public"),
    [
        pytest.param(
            "ModuleNotFoundError: No module named 'torchh'",
            "ModuleNotFoundError: No module named 'torchh'",
            id="plain-exception-kept",
        ),
        pytest.param(
            "ValueError: learning rate 0.5 out of range [0, 0.1]",
            "ValueError: learning rate 0.5 out of range [0, 0.1]",
            id="numbers-kept",
        ),
        pytest.param(
            "HTTPError: 401 for https://alice:hunter2@example.org/repo.git",
            "HTTPError: 401 for https://***@example.org/repo.git",
            id="url-credentials",
        ),
        pytest.param(
            "fatal: could not read from https://ghp_abc@github.com/x/y",
            "fatal: could not read from https://***@github.com/x/y",
            id="url-token-user",
        ),
        pytest.param(
            "RuntimeError: login failed with password=hunter2, user=bob",
            "RuntimeError: login failed with password=***, user=bob",
            id="key-equals",
        ),
        pytest.param(
            'KeyError: bad config {"api_key": "abc def", "lr": 1}',
            'KeyError: bad config {"api_key": ***, "lr": 1}',
            id="json-key-quoted",
        ),
        pytest.param(
            "WANDB_API_KEY='k1' rejected", "WANDB_API_KEY=*** rejected", id="env-style-key"
        ),
        pytest.param(
            "requests.HTTPError: 403 Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.x",
            "requests.HTTPError: 403 Authorization: ***",
            id="bearer-header",
        ),
        pytest.param(
            "PermissionError: [Errno 13] Permission denied: '/home/alice/data/x.npz'",
            "PermissionError: [Errno 13] Permission denied: '/home/***/data/x.npz'",
            id="home-path",
        ),
        pytest.param(
            "AuthError: key 0123456789abcdef0123456789abcdef refused",
            "AuthError: key *** refused",
            id="long-hex",
        ),
        pytest.param(
            "S3Error: AKIAIOSFODNN7EXAMPLE/wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY denied",
            "S3Error: AKIAIOSFODNN7EXAMPLE/*** denied",
            id="long-base64-word",
        ),
        pytest.param(
            "FileNotFoundError: /data/very_long_directory_name_without_digits/x",
            "FileNotFoundError: /data/very_long_directory_name_without_digits/x",
            id="long-word-without-digits-kept",
        ),
    ],
)
def test_redact(line: str, public: str) -> None:
    assert redact(line) == public


def test_redact_keeps_hpoptims_own_prefix() -> None:
    reason = "failed with exit code 1: OSError: token=s3cr3t"
    assert redact(reason) == "failed with exit code 1: OSError: token=***"
