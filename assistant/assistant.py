"""The Assistant facade: ``ask(question, history) -> Iterator[AnswerEvent]``.

One question: retrieve (hybrid search + relevance gate), fit the best sources into the model's
window, stream the model's reply, then map its ``[n]`` markers to checked citations. When the
gate finds nothing relevant, or the reply is not supported by any source it cites, the answer
is the abstention reply instead of an invented one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from assistant import prompting
from assistant.events import Answer, AnswerEvent, Done, Notice, Source, Token, Waiting
from assistant.focus import focus
from assistant.llm import LlamaRuntime, LoadedModel
from assistant.remote_llm import RemoteModel, RemoteRuntime, is_remote
from assistant.reply_check import after_second_look, check_reply, second_look_due
from assistant.retrieval import Retrieval, retrieve, sources_from
from store import indexing, model_catalogue
from store.errors import DomainsmithError, KnowledgeBaseError, ModelNotFound
from store.knowledge_base import KnowledgeBase, validate_name
from store.model_catalogue import BundledModel, Progress
from store.registry import resolve_model
from store.settings import Settings

log = logging.getLogger(__name__)

ABSTAIN_REPLY = prompting.ABSTAIN_REPLY  # re-exported: callers import it from the facade


@dataclass(frozen=True)
class AskOptions:
    kb: str | None = None
    model: str | None = None
    use_kb: bool = True
    mode: str = "hybrid"
    k: int | None = None


class Assistant:
    """``remote`` (default: the one ``remote_url`` configures, if any) answers for ``remote:NAME`` models.

    ``embedder`` checks citations against the sentences that cite them; ``load_embedder`` gives it
    on first use instead (a question that waits for indexing then does not wait for a model load).
    """

    def __init__(
        self,
        settings: Settings,
        runtime: LlamaRuntime,
        open_kb: Callable[[str | None], KnowledgeBase],
        embedder=None,
        remote: RemoteRuntime | None = None,
        load_embedder: Callable[[], Any] | None = None,
    ):
        self.settings = settings
        self.runtime = runtime
        self.remote = remote or RemoteRuntime.from_settings(settings)
        self.open_kb = open_kb
        self._embedder = embedder
        self._load_embedder = load_embedder

    @property
    def embedder(self):
        if self._embedder is None and self._load_embedder is not None:
            self._embedder = self._load_embedder()
        return self._embedder

    # -- models ----------------------------------------------------------------------------

    def bundled_model(self, spec: str | None) -> BundledModel | None:
        """The bundled model ``spec`` names (None or "default": the configured default), or None."""
        spec = spec or self.settings.chat_model
        if is_remote(spec):
            return None
        return model_catalogue.resolve(spec, model_catalogue.CHAT, self.settings.home)

    def needs_assembly(self, spec: str | None) -> BundledModel | None:
        """The bundled model that must be assembled (or re-verified) before ``spec`` can load, if any."""
        model = self.bundled_model(spec)
        return model if model is not None and model_catalogue.needs_assembly(model, self.settings.home) else None

    def model_path(self, spec: str | None, progress: Progress | None = None) -> tuple[Path, str]:
        """(GGUF path, display name) for a bundled model, a path, a registry name, or None (the default).

        A split bundled model is assembled and verified on first use (``progress(done, total)``).
        """
        model = self.bundled_model(spec)
        if model is not None:
            return model_catalogue.model_path(model, self.settings.home, progress), model.name
        spec = spec or self.settings.chat_model
        assert spec
        path = resolve_model(self.settings.db_path, spec)
        return path, spec if not Path(spec).expanduser().is_file() else path.name

    def prepare(self, spec: str | None, progress: Progress | None = None) -> None:
        """Make ``spec`` ready to answer: a split bundled model is assembled; a remote one must be configured."""
        if is_remote(spec or self.settings.chat_model):
            self.remote_model(spec)
        else:
            self.model_path(spec, progress)

    def remote_model(self, spec: str | None) -> RemoteModel:
        if self.remote is None:
            raise ModelNotFound(
                f"{spec or self.settings.chat_model} is a remote model, but no remote server is configured: "
                "set remote_url (and remote_model)"
            )
        return self.remote.model(spec or self.settings.chat_model or "")

    def use_model(self, spec: str | None) -> LoadedModel | RemoteModel:
        """The model that answers for ``spec``: loaded in-process, or on the remote server (``remote:NAME``)."""
        if is_remote(spec or self.settings.chat_model):
            return self.remote_model(spec)
        path, name = self.model_path(spec)
        return self.runtime.load(path, name)

    def runtime_for(self, model: LoadedModel | RemoteModel) -> LlamaRuntime | RemoteRuntime:
        if isinstance(model, RemoteModel):
            assert self.remote is not None
            return self.remote
        return self.runtime

    # -- answering -------------------------------------------------------------------------

    def ask(
        self,
        question: str,
        history: Sequence[dict] = (),
        options: AskOptions = AskOptions(),
        retrieval: Retrieval | None = None,
    ) -> Iterator[AnswerEvent]:
        """Answer one question; ``retrieval`` reuses sources already retrieved (compare mode)."""
        started = time.monotonic()
        question, notice = self.check_question(question)
        if notice is not None:
            yield notice
        kb = None
        if options.use_kb and retrieval is None:  # before the model loads: the documents must be there
            yield from self.wait_for_indexing(options.kb)
            kb = self.searchable_kb(options.kb)
        loaded = self.use_model(options.model)
        if not options.use_kb:
            yield from self._generate(
                question,
                prompting.build_messages(question, [], history, prompting.NO_KB_SYSTEM_PROMPT),
                [],
                loaded,
                started,
                grounded=False,
            )
            return
        if retrieval is None:
            assert kb is not None
            retrieval = self.retrieve(kb, question, history, options)
        if not retrieval.relevant:
            yield from self._abstain(
                retrieval,
                loaded.name,
                started,
                f"no passage is relevant enough (relevance {retrieval.relevance:.2f} "
                f"< {self.settings.relevance_threshold:.2f})",
            )
            return
        budget = prompting.Budget(loaded.context, min(self.settings.max_tokens, loaded.context // 4))
        count_tokens = self.runtime_for(loaded).count_tokens
        sources = self.offered_sources(question, retrieval, count_tokens)
        sources, kept_history, dropped = prompting.fit(question, sources, history, budget, count_tokens)
        if dropped:
            yield Notice(
                f"The model's {loaded.context}-token context holds {len(sources)} of the "
                f"{len(retrieval.hits)} passages and {len(kept_history)} earlier messages."
            )
        if not sources:
            yield from self._abstain(retrieval, loaded.name, started, "no passage fits the model's context")
            return
        messages = prompting.build_messages(question, sources, kept_history, **prompting.style(prompt_style(loaded)))
        yield from self._generate(
            question,
            messages,
            sources,
            loaded,
            started,
            grounded=True,
            unknown=retrieval.unknown_names,
            relevance=retrieval.relevance,
        )

    def compare(
        self,
        question: str,
        models: Sequence[str | None],
        history: Sequence[dict] = (),
        options: AskOptions = AskOptions(),
    ) -> Iterator[tuple[int, AnswerEvent]]:
        """Answer one question with each model in turn over the same retrieved sources.

        Yields ``(model index, event)``; one runtime holds one model, so the answers stream one after
        the other. Retrieval runs once, so any difference between the answers comes from the models.
        """
        question, notice = self.check_question(question)
        if notice is not None:
            yield 0, notice
        if options.use_kb:
            for waiting in self.wait_for_indexing(options.kb):
                yield 0, waiting
        retrieval = (
            self.retrieve(self.searchable_kb(options.kb), question, history, options) if options.use_kb else None
        )
        for index, model in enumerate(models):
            for event in self.ask(question, history, replace(options, model=model), retrieval):
                yield index, event

    def check_question(self, question: str) -> tuple[str, Notice | None]:
        """The question stripped and cut to the configured length (with a notice when cut)."""
        question = (question or "").strip()
        if not question:
            raise DomainsmithError("the question is empty: type a question first")
        limit = self.settings.max_question_chars
        if len(question) <= limit:
            return question, None
        return question[:limit], Notice(
            f"The question was {len(question):,} characters long; only the first {limit:,} were used."
        )

    def wait_for_indexing(self, name: str | None) -> Iterator[Waiting]:
        """Wait for the documents being added to knowledge base ``name`` right now (in this process).

        Yields a status about every half second while it waits, so a UI can show it and cancel
        the wait; after ``indexing_wait_seconds`` it gives up with a ``KnowledgeBaseError``.
        """
        name = validate_name(name or self.settings.default_kb)
        batches = indexing.INDEXING.pending(indexing.key(self.settings.db_path, name))
        try:
            for batch in indexing.wait(batches, self.settings.indexing_wait_seconds):
                yield Waiting(f"Waiting for {indexing.listing(batch.names)} to finish indexing ({batch.progress}) …")
        except TimeoutError as exc:
            raise KnowledgeBaseError(
                f"the knowledge base {name!r} is still indexing {exc} after "
                f"{self.settings.indexing_wait_seconds:g} seconds: ask again when the Knowledge Base tab "
                "shows it done"
            ) from None

    def searchable_kb(self, name: str | None) -> KnowledgeBase:
        kb = self.open_kb(name)
        if kb.stats()["chunks"] == 0:
            raise KnowledgeBaseError(
                f"the knowledge base {kb.name!r} has no documents yet: add them on the Knowledge Base tab "
                f"(or with `python app.py kb add PATH --kb {kb.name}`), then ask again"
            )
        return kb

    def retrieve(
        self, kb: KnowledgeBase, question: str, history: Sequence[dict] = (), options: AskOptions = AskOptions()
    ) -> Retrieval:
        return retrieve(
            kb,
            question,
            history,
            k=options.k or self.settings.retrieval_k,
            threshold=self.settings.relevance_threshold,
            mode=options.mode,
            neighbour_tokens=self.settings.neighbour_tokens,
        )

    def offered_sources(self, question: str, retrieval: Retrieval, count_tokens: Callable[[str], int]) -> list[Source]:
        """The passages as the model will read them: numbered, each cut to ``source_tokens`` (``assistant.focus``)."""
        return focus(question, sources_from(retrieval.hits), self.embedder, self.settings.source_tokens, count_tokens)

    def _generate(
        self,
        question: str,
        messages: list[dict],
        sources: list[Source],
        loaded: LoadedModel | RemoteModel,
        started: float,
        grounded: bool,
        unknown: Sequence[str] = (),
        relevance: float = 0.0,
    ) -> Iterator[AnswerEvent]:
        pieces: list[str] = []
        first = None
        model = loaded.name
        max_tokens = min(self.settings.max_tokens, loaded.context // 4) if grounded else self.settings.max_tokens
        for piece in self.runtime_for(loaded).stream_chat(
            messages, max_tokens=max_tokens, temperature=self.settings.temperature, model=loaded
        ):
            if first is None:
                first = time.monotonic() - started
            pieces.append(piece)
            yield Token(piece)
        reply = "".join(pieces).strip()
        if not grounded:
            seconds = time.monotonic() - started
            yield Done(Answer(reply, False, [], [], model=model, seconds=seconds, first_token_seconds=first))
            return
        answer = check_reply(reply, question, sources, self.embedder, self.settings.support_threshold, unknown=unknown)
        if second_look_due(reply, relevance, self.settings.second_look_relevance) and self._can_continue(loaded):
            yield Notice(
                f"The model found no answer, though a passage scored {relevance:.2f} for relevance: "
                "asking it once more to answer from the sources."
            )
            yield Token("\n\n")
            second = yield from self._second_look(messages, loaded, max_tokens)
            checked = check_reply(
                second, question, sources, self.embedder, self.settings.support_threshold, unknown=unknown
            )
            answer = after_second_look(answer, checked)
        if answer.extractive:
            yield Notice("The model's reply did not answer from the sources; quoting the passage that does.")
        seconds = time.monotonic() - started
        yield Done(replace(answer, model=model, seconds=seconds, first_token_seconds=first))

    def _can_continue(self, loaded: LoadedModel | RemoteModel) -> bool:
        """A second look needs the reply begun for the model: llama.cpp here, with the GGUF's own template."""
        return isinstance(loaded, LoadedModel) and self.runtime.can_continue(loaded)

    def _second_look(self, messages: list[dict], loaded: LoadedModel, max_tokens: int) -> Generator[Token, None, str]:
        """Ask again with the assistant's turn begun as an answer (``prompting.SECOND_LOOK_PREFIX``).

        The messages are the same, so llama.cpp reuses their evaluated state: only the prefix and the
        new reply cost time. Yields the tokens (the prefix first); returns the whole reply.
        """
        prefix = prompting.SECOND_LOOK_PREFIX
        yield Token(prefix)
        pieces = [prefix]
        for piece in self.runtime.stream_chat(
            messages, max_tokens=max_tokens, temperature=self.settings.temperature, model=loaded, prefix=prefix
        ):
            pieces.append(piece)
            yield Token(piece)
        return "".join(pieces).strip()

    def _abstain(self, retrieval: Retrieval, model: str, started: float, reason: str) -> Iterator[AnswerEvent]:
        yield Token(ABSTAIN_REPLY)
        yield Done(
            Answer(
                ABSTAIN_REPLY,
                True,
                [],
                sources_from(retrieval.hits),
                reason=reason,
                model=model,
                seconds=time.monotonic() - started,
                first_token_seconds=time.monotonic() - started,
            )
        )


def prompt_style(loaded: LoadedModel | RemoteModel) -> str:
    """The prompt style of a bundled model (its catalogue entry), else the default.

    A remote model whose name is a bundled model's (``SmolLM2-135M-Instruct``, also as a file name
    such as ``SmolLM2-135M-Instruct.Q4_1.gguf``) gets that model's style, so the same model answers
    from the same prompt wherever it runs.
    """
    if isinstance(loaded, RemoteModel):
        name = loaded.model
        bundled = model_catalogue.find(name) or model_catalogue.find(Path(name).name.split(".")[0])
    else:
        bundled = model_catalogue.find(loaded.name) or model_catalogue.find(loaded.path.stem)
    return bundled.prompt_style if bundled else "grounded"


def ask_once(
    assistant: Assistant,
    question: str,
    options: AskOptions = AskOptions(),
    on_token: Callable[[str], None] | None = None,
) -> Answer:
    """Run ``ask`` to the end; returns the final answer (tokens go to ``on_token``)."""
    answer = None
    for event in assistant.ask(question, (), options):
        if isinstance(event, Token) and on_token:
            on_token(event.text)
        elif isinstance(event, Done):
            answer = event.answer
    assert answer is not None
    return answer
