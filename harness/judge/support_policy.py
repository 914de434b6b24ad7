"""The support policy: which FastTrack versions each gateway profile must be compatible with
(``harness/data/support-policy.yaml``), by model id or by version specifier matched against the announced version."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from harness.errors import ScenarioError
from harness.protocol import fasttrack_models, generations
from harness.scenario.yamlnodes import LList, LMap, Source, kind, load

DEFAULT_POLICY = Path(__file__).resolve().parent.parent / "data" / "support-policy.yaml"


@dataclass(frozen=True)
class Entry:
    """One item of a gateway's list: a FastTrack model id (matched by the version that model announces) or a
    version specifier (``>=24.3.3,<25.1``; a bare version means ``==``)."""

    text: str
    model_version: str | None = None  # a model id: the exact version string that model announces
    spec: SpecifierSet | None = None

    def matches(self, announced: str) -> bool:
        if self.model_version is not None and announced == self.model_version:
            return True
        version = _version(announced)
        return self.spec is not None and version is not None and self.spec.contains(version, prereleases=True)


def _version(text: str) -> Version | None:
    try:
        return Version(text)
    except InvalidVersion:
        return None


class Policy(Mapping[str, frozenset[str]]):
    """The support policy. As a mapping: gateway profile id -> the FastTrack *model* ids it requires (what the
    mock columns, the pytest plugin, mutate and identify use). For a real FastTrack, :meth:`requires` matches the
    version the column announced against the same entries: requiredness never depends on a column's label."""

    def __init__(self, entries: dict[str, tuple[Entry, ...]]) -> None:
        self.entries = entries
        self._models = {gw: frozenset(m.id for m in fasttrack_models.MODELS if any(e.matches(m.version) for e in es))
                        for gw, es in entries.items()}

    def __getitem__(self, gateway: str) -> frozenset[str]:
        return self._models[gateway]

    def __iter__(self) -> Iterator[str]:
        return iter(self._models)

    def __len__(self) -> int:
        return len(self._models)

    def requires(self, gateway: str, announced: str | None) -> bool:
        """Is a real FastTrack that announced ``announced`` required for ``gateway``? A column that announced no
        usable version (none, several, garbled, not a version the entries can place) is required wherever
        anything is: it must not slip out of the exit code by not saying what it is."""
        entries = self.entries.get(gateway, ())
        if announced is None or (_version(announced) is None and not any(e.model_version == announced
                                                                           for e in entries)):
            return bool(entries)
        return any(e.matches(announced) for e in entries)

    def with_columns(self, extra: dict[str, frozenset[str]]) -> Policy:
        """A copy that also requires the given column ids (fault columns, required wherever their model is)."""
        out = Policy(self.entries)
        out._models = {gw: ids | extra.get(gw, frozenset()) for gw, ids in self._models.items()}
        return out


def as_policy(policy: Mapping[str, frozenset[str]]) -> Policy:
    """A policy given as gateway -> model ids (tests, callers that build one) as a :class:`Policy`."""
    if isinstance(policy, Policy):
        return policy
    models = {m.id: m for m in fasttrack_models.MODELS}
    out = Policy({gw: tuple(Entry(i, models[i].version) if i in models else Entry(i) for i in sorted(ids))
                  for gw, ids in policy.items()})
    out._models = {gw: frozenset(ids) for gw, ids in policy.items()}  # column ids as given (e.g. fault columns)
    return out


def load_policy(path: str | Path = DEFAULT_POLICY) -> Policy:
    """Per gateway profile, the FastTrack versions it must support: model ids and version specifiers (PEP 440, as
    ``packaging`` reads them). Unknown profiles, entries that are neither and duplicate profiles are usage errors
    with file:line."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"cannot read support policy: {exc}", str(path)) from None
    src = Source(str(path), text)
    doc = load(src)
    if not isinstance(doc, LMap) or "required" not in doc or not isinstance(doc["required"], LMap):
        raise src.error("policy needs a mapping 'required: {gateway: [fasttrack, ...]}'", getattr(doc, "mark", (1, 1)))
    req = doc["required"]
    gw_names = generations.by_name()
    models = {m.id: m for m in fasttrack_models.MODELS}
    out: dict[str, tuple[Entry, ...]] = {}
    for gw, fts in req.items():
        if gw not in gw_names:
            raise ScenarioError(f"unknown gateway profile {gw!r}", str(path), *req.key_marks[gw], key=f"required.{gw}",
                                source_line=src.line(req.key_marks[gw][0]))
        if not isinstance(fts, LList):
            raise src.error("expected a list of FastTrack model ids or version ranges", req.value_marks[gw],
                            f"required.{gw}")
        entries = []
        for i, ft in enumerate(fts):
            if isinstance(ft, dict | list):
                raise src.error(f"expected a FastTrack model id or a version range, got {kind(ft)}",
                                fts.item_marks[i], f"required.{gw}[{i}]")
            entries.append(_entry(src, ft, models, fts.item_marks[i], f"required.{gw}[{i}]"))
        profile_id = gw_names[gw].id
        if profile_id in out:  # 'as-is' and 'G4' name one profile: two lists would silently drop one
            raise src.error(f"{gw!r} names profile {profile_id!r}, which the policy already lists",
                            req.key_marks[gw], f"required.{gw}")
        out[profile_id] = tuple(entries)
    if not any(out.values()):  # a gate on a policy that requires nothing could only ever say "deployable"
        raise src.error("the policy requires nothing: 'required' lists no FastTrack for any gateway",
                        doc.value_marks["required"], "required")
    return Policy(out)


def _entry(src: Source, raw: object, models: dict[str, fasttrack_models.FastTrackModel], mark: tuple[int, int],
           key: str) -> Entry:
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):  # 24.10 would silently be 24.1
        raise src.error(f"{raw!r} is a number to YAML: quote versions (\"{raw}\")", mark, key)
    text = raw.strip() if isinstance(raw, str) else None
    if not text:
        raise src.error(f"expected a FastTrack model id or a version range, got {raw!r}", mark, key)
    if text in models:
        model = models[text]
        version = _version(model.version)
        return Entry(text, model.version, SpecifierSet(f"=={version}") if version is not None else None)
    try:
        spec = SpecifierSet(f"=={text}" if _version(text) is not None else text)
    except InvalidSpecifier:
        raise src.error(f"{text!r} is neither a FastTrack model ({', '.join(models)}) nor a version range such "
                        "as '>=24.3.3,<25.1'", mark, key) from None
    if not str(spec):
        raise src.error("an empty version range matches every version: name the versions", mark, key)
    return Entry(text, None, spec)
