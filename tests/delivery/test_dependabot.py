"""Dependabot: every pinned ecosystem is updated weekly, grouped, and only after a cooldown."""

from __future__ import annotations

from tests.delivery.helpers import GITHUB, ROOT, load_yaml

COOLDOWN_DAYS = 7


def _updates() -> list[dict]:
    config = load_yaml(GITHUB / "dependabot.yml")
    assert config["version"] == 2
    return config["updates"]


def _directories(update: dict) -> list[str]:
    return update.get("directories") or [update["directory"]]


def test_every_pinned_ecosystem_is_covered_where_its_files_are():
    by_ecosystem = {u["package-ecosystem"]: _directories(u) for u in _updates()}
    assert by_ecosystem == {
        "github-actions": ["/", "/.github/actions/setup"],
        "pip": ["/", "/lambdas"],
        "npm": ["/"],
    }
    assert (ROOT / "requirements.txt").is_file()
    assert (ROOT / "requirements-dev.txt").is_file()
    assert (ROOT / "lambdas" / "requirements.txt").is_file()
    assert (ROOT / "package.json").is_file()
    assert (ROOT / "package-lock.json").is_file()


def test_updates_are_weekly_grouped_and_wait_for_the_cooldown():
    for update in _updates():
        ecosystem = update["package-ecosystem"]
        assert update["schedule"]["interval"] == "weekly", ecosystem
        assert [g["patterns"] for g in update["groups"].values()] == [["*"]], ecosystem
        # a compromised or broken release has a week to be noticed and yanked first
        assert update["cooldown"]["default-days"] >= COOLDOWN_DAYS, ecosystem


def test_github_actions_cooldown_uses_only_the_key_it_supports():
    # Dependabot rejects semver-*-days for github-actions, and an invalid file disables every entry
    actions = next(u for u in _updates() if u["package-ecosystem"] == "github-actions")
    assert set(actions["cooldown"]) == {"default-days"}
