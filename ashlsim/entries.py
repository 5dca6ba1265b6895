"""What a comparison runs: its *entries*, each a label and the scenario keys that scheme changes,
and the recipes that give them.

An entry is written as a label (``"ssp(staleness=2, local_steps=2)"``), or as a mapping from
label to a scenario fragment, so that each scheme can run as its authors ran it::

    asp: {strategy: {name: asp, server_optimizer: {momentum: 0.9}}}   # momentum on the PS
    ashl: {training: {momentum: 0.9}}                                 # ... on the workers

A fragment without ``strategy.name`` takes the scheme the label names. Recipes (``recipes/``)
are such mappings with a ``common`` fragment every scheme shares.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

from .errors import ScenarioError
from .scenario import Scenario
from .yamlio import load_file, loads

_SPEC = re.compile(r"^\s*(?P<name>[a-z_][a-z0-9_]*)\s*(?:\((?P<args>.*)\))?\s*$", re.S)
# a comparison with no scheme named (the main job, on the command line and in Python): the
# schemes as the ASHL authors train them (a named recipe), over 6 seeds (the fewest for 95 %
# intervals of the median)
MAIN_RECIPE = "authors"
MAIN_STRATEGIES = ("bsp", "asp", "ssp", "local_sgd", "ashl")
# schemes whose PS applies the mean of N deltas (one step of batch N*b per round), against the
# ones that apply each push whole: at the same lr their per-sample step differs by about N


def split_top_level(text: str, sep: str = ",") -> list[str]:
    """Split ``text`` at ``sep`` outside brackets and quotes: ``"a(x=1,y=2),b"`` gives
    ``["a(x=1,y=2)", "b"]``. Unbalanced brackets are a ``ScenarioError``."""
    parts, depth, quote, start = [], 0, None, 0
    for i, ch in enumerate(text):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
            if depth < 0:
                raise ScenarioError("strategies", text, "balanced brackets")
        elif ch == sep and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    if depth or quote:
        raise ScenarioError("strategies", text, "balanced brackets and quotes")
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]


def parse_strategy_label(label: str) -> dict[str, object]:
    """``"ssp"`` or ``"ssp(staleness=10, local_steps=2)"`` -> overrides of the strategy block.
    Values are YAML (``asp(server_optimizer={momentum: 0.9})`` works)."""
    if not isinstance(label, str):
        raise ScenarioError("strategies", label, "a name like ssp or ssp(staleness=10)")
    match = _SPEC.match(label)
    if not match:
        raise ScenarioError("strategies", label, "a name like ssp or ssp(staleness=10)")
    overrides = {"strategy.name": match["name"]}
    for part in split_top_level(match["args"] or ""):
        key, sep, raw = part.partition("=")
        if not sep or not key.strip():
            raise ScenarioError(
                "strategies", label, "arguments as key=value, e.g. ssp(staleness=10)"
            )
        overrides[f"strategy.{key.strip()}"] = loads(raw, f"strategies: {key.strip()}")
    return overrides


def _flatten(fragment: dict, prefix: str = "") -> dict[str, object]:
    """A nested scenario fragment as dotted key paths (a distribution spec stays whole)."""
    flat = {}
    for key, value in fragment.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and "dist" not in value:  # merged key by key ({}: nothing)
            flat.update(_flatten(value, path + "."))
        else:
            flat[path] = value
    return flat


def entry_overrides(label: str, fragment) -> dict[str, object]:
    """The dotted overrides of one entry: ``fragment`` (nested or dotted keys) on top of the
    scheme ``label`` names, unless the fragment names its own ``strategy.name``."""
    if fragment is None:
        fragment = {}
    if not isinstance(fragment, dict):
        raise ScenarioError(f"strategies.{label}", fragment, "a mapping of scenario keys")
    flat = _flatten(fragment)
    if "strategy" in fragment and isinstance(fragment["strategy"], str):
        flat["strategy.name"] = flat.pop("strategy")
    name = flat.pop("strategy.name", None)
    base = parse_strategy_label(label) if name is None else {"strategy.name": name}
    return {**base, **flat}  # strategy.name first: setting it clears the old scheme's keys


def resolve_entries(strategies) -> list[tuple[str, dict[str, object]]]:
    """``(label, overrides)`` for each entry of a comparison: a comma-separated string, a list
    of labels and one-key mappings, or a mapping from label to scenario fragment."""
    if isinstance(strategies, str):
        strategies = split_top_level(strategies)
        if not strategies:
            raise ScenarioError("strategies", "", "at least one scheme, e.g. bsp,asp")
    if isinstance(strategies, dict):
        items = list(strategies.items())
    elif isinstance(strategies, (list, tuple)):
        items = []
        for item in strategies:
            if isinstance(item, str):
                items.append((item.strip(), None))
            elif isinstance(item, dict) and len(item) == 1:
                items.append(next(iter(item.items())))
            else:
                raise ScenarioError(
                    "strategies", item, "a label like ssp(staleness=2) or {label: {keys...}}"
                )
    else:
        raise ScenarioError("strategies", strategies, "a list of schemes or a mapping")
    if not items:
        raise ScenarioError("strategies", strategies, "at least one scheme")
    labels = [label for label, _ in items]
    if len(set(labels)) != len(labels):
        raise ScenarioError("strategies", labels, "labels that differ from each other")
    return [(str(label), entry_overrides(str(label), frag)) for label, frag in items]


def load_recipe(name_or_path: str) -> dict:
    """A recipe: ``{common: fragment, strategies: {label: fragment}}``, by the name of one
    shipped in ``ashlsim/recipes`` (``authors``, ``plain``) or a YAML path. Returns the
    ``strategies`` mapping with ``common`` merged under each fragment."""
    if not isinstance(name_or_path, str) or "\x00" in name_or_path:
        raise ScenarioError("recipe", name_or_path, "a recipe name or a YAML path")
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        data = load_file(path, "recipe") or {}
    else:
        shipped = resources.files("ashlsim") / "recipes" / f"{name_or_path}.yaml"
        if not shipped.is_file():
            names = ", ".join(shipped_recipes())
            raise ScenarioError("recipe", name_or_path, f"one of {names} or a path")
        data = loads(shipped.read_text(), "recipe") or {}
    if not isinstance(data, dict) or not isinstance(data.get("strategies"), dict):
        raise ScenarioError("recipe", name_or_path, "a mapping with common and strategies")
    fragments = {"common": data.get("common"), **{
        f"strategies.{label}": frag for label, frag in data["strategies"].items()}}  # fmt: skip
    for where, fragment in fragments.items():
        if fragment is not None and not isinstance(fragment, dict):
            raise ScenarioError(
                f"recipe {name_or_path}: {where}", fragment, "a mapping of scenario keys"
            )
    common = _flatten(data.get("common") or {})
    return {label: {**common, **_flatten(frag or {})} for label, frag in data["strategies"].items()}


def recipe_entries(recipe: dict, labels, field: str) -> dict:
    """The ``recipe``'s fragments for ``labels`` (None: every label of the recipe), in order;
    ``field`` names where the labels came from in an error."""
    if labels is None:
        labels = list(recipe)
    if not isinstance(labels, list):
        raise ScenarioError(field, labels, f"a list of the recipe's labels {list(recipe)}")
    for label in labels:
        if not isinstance(label, str) or label not in recipe:
            raise ScenarioError(field, label, f"one of the recipe's {list(recipe)}")
    return {label: recipe[label] for label in labels}


def shipped_recipes() -> list[str]:
    """The names of the recipes that come with ashlsim (``ashlsim/recipes``)."""
    folder = resources.files("ashlsim") / "recipes"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def resolve(scenario: Scenario, strategies) -> dict[str, Scenario]:
    """Each entry's scenario, validated before anything runs."""
    resolved = {}
    for label, overrides in resolve_entries(strategies):
        try:
            resolved[label] = scenario.with_overrides(overrides)
        except ScenarioError as exc:
            raise ScenarioError(
                f"strategies.{label}: {exc.field}", exc.value, exc.allowed
            ) from None
    return resolved


def scenario_for(scenario: Scenario, label: str) -> Scenario:
    """``scenario`` under the scheme ``label`` names (its parameters kept if it is the same)."""
    return scenario.with_overrides(parse_strategy_label(label))


def step_size_warning(resolved: dict[str, Scenario]) -> str | None:
    """A warning, in plain English, when averaging schemes (BSP, Local SGD: the mean of N
    deltas a round) are compared with schemes that apply each push whole (ASP, SSP) at one
    learning rate nobody tuned, under a recipe or not: their steps per sample differ by about
    N, and the verdict may reflect that convention rather than the schemes."""
    kinds = {}
    for label, sc in resolved.items():
        merges = sc.strategy.merges()  # what the scheme declares (StrategyParams.merges)
        if merges is not None:
            kinds[label] = {"mean": "averaging", "each": "whole"}[merges]
    if len(set(kinds.values())) < 2:
        return None
    lrs = {(sc.training.lr, sc.strategy.server_optimizer.lr) for sc in resolved.values()}
    if len(lrs) > 1:
        return None  # somebody chose the step sizes
    n = next(iter(resolved.values())).cluster.workers
    avg = [k for k, v in kinds.items() if v == "averaging"]
    whole = [k for k, v in kinds.items() if v == "whole"]
    return (
        f"{_names(avg)} {'averages' if len(avg) == 1 else 'average'} the {n} workers' deltas "
        f"each round, while {_names(whole)} {'applies' if len(whole) == 1 else 'apply'} each "
        f"push whole: at one learning rate their steps per sample differ by about {n}x, and "
        "the verdict may reflect that. Tune each scheme's learning rate "
        "(--tune training.lr=[...]) to compare the schemes themselves."
    )


def _names(labels: list[str]) -> str:
    return labels[0] if len(labels) == 1 else ", ".join(labels[:-1]) + " and " + labels[-1]


def plan_entries(strategies=None, recipe: str | None = None):
    """The entries a comparison runs, and the recipe they follow, by the rule the command
    line and Python share: nothing named is the main job (the ``authors`` recipe's
    ``MAIN_STRATEGIES``); a recipe alone is all of its labels; a recipe and labels (a list or
    a comma-separated string) are those labels of the recipe; schemes without a recipe run
    with their own parameters. Returns ``(entries, recipe)``."""
    if strategies is None and recipe is None:
        recipe, strategies = MAIN_RECIPE, list(MAIN_STRATEGIES)
    if recipe is None or isinstance(strategies, dict):  # (a mapping: the recipe is a record)
        return strategies, recipe
    if isinstance(strategies, str):
        strategies = split_top_level(strategies)
    if isinstance(strategies, tuple):
        strategies = list(strategies)
    return recipe_entries(load_recipe(recipe), strategies, "strategies"), recipe
