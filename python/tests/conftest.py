"""The guests and the wsandbox binary the tests use, named by the
environment: ``cargo test`` (``tests/all/python.rs``) sets these to what
it built."""

import os

import pytest


def _env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        pytest.fail(
            f"{name} is not set: run these tests through `cargo test python`, "
            "which builds wsandbox and the guests and names them"
        )
    return value


@pytest.fixture(scope="session")
def shapes() -> str:
    return _env("WSANDBOX_TEST_SHAPES")


@pytest.fixture(scope="session")
def hosted() -> str:
    return _env("WSANDBOX_TEST_HOSTED")


@pytest.fixture(scope="session")
def words() -> str:
    return _env("WSANDBOX_TEST_WORDS")


@pytest.fixture(scope="session")
def binary() -> str:
    return _env("WSANDBOX_BIN")
