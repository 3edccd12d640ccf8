"""The embedded default engine: a transformers model in-process, CPU or CUDA.

With MODEL_NAME unset it serves the bundled SmolLM2-135M-Instruct. Concurrent requests are
batched continuously by `DecodeScheduler` on a worker thread; output constraints are enforced
with xgrammar during decoding.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from evalserve.engines.base import (
    CompletionOutput,
    Engine,
    EngineHealth,
    GenerationRequest,
    GenerationResult,
    ModelInfo,
    StreamDelta,
)
from evalserve.engines.transformers.sequence import Sequence
from evalserve.engines.weights.loader import ModelSource, load_model, resolve_model_source
from evalserve.errors import EngineUnavailableError, InvalidInputError

if TYPE_CHECKING:
    from evalserve.engines.transformers.scheduler import DecodeScheduler
    from evalserve.settings import Settings

__all__ = ["TransformersEngine"]


def _pick_device(setting: str) -> str:
    import torch

    if setting == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return setting


class TransformersEngine(Engine):
    """In-process engine over a Hugging Face causal LM."""

    def __init__(
        self,
        source: ModelSource,
        *,
        cache_root: Any,
        device: str = "auto",
        dtype: str = "auto",
        capacity: int = 32,
        reserve: int = 0,
        max_model_len: int = 2048,
        prefix_caching: bool = True,
    ) -> None:
        self.source = source
        self.cache_root = cache_root
        self.device_setting = device
        self.dtype = dtype
        self.capacity = capacity
        self.reserve = reserve
        self.max_model_len = max_model_len
        self.prefix_caching = prefix_caching
        self.device = "cpu"
        self.model: Any = None
        self.tokenizer: Any = None
        self.loaded_at: float | None = None
        self._scheduler: DecodeScheduler | None = None
        self._live: dict[str, list[Sequence]] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> TransformersEngine:
        source = resolve_model_source(settings.model_name, settings.model_dir, settings.model_id)
        return cls(
            source,
            cache_root=settings.model_cache_dir or settings.data_dir / "models",
            device=settings.device,
            dtype=settings.dtype,
            capacity=settings.max_num_seqs,
            reserve=settings.interactive_reserve,
            max_model_len=settings.max_model_len,
            prefix_caching=settings.enable_prefix_caching,
        )

    @property
    def model_id(self) -> str:
        return self.source.model_id

    async def start(self) -> None:
        await asyncio.to_thread(self._load)

    def _load(self) -> None:
        import torch

        from evalserve.engines.transformers.constraints import GrammarFactory
        from evalserve.engines.transformers.scheduler import DecodeScheduler

        torch.set_num_threads(max(1, len(os.sched_getaffinity(0))))
        self.device = _pick_device(self.device_setting)
        self.model, self.tokenizer = load_model(
            self.source, cache_root=self.cache_root, device=self.device, dtype=self.dtype
        )
        eos = set()
        for ids in (self.tokenizer.eos_token_id, self.model.generation_config.eos_token_id):
            if ids is not None:
                eos.update(ids if isinstance(ids, list) else [ids])
        vocab = self.model.get_output_embeddings().weight.shape[0]
        grammars = GrammarFactory(self.tokenizer, vocab, sorted(eos))
        self._scheduler = DecodeScheduler(
            self.model, self.tokenizer, capacity=self.capacity, reserve=self.reserve,
            eos_ids=frozenset(eos),
            grammars=grammars, prefix_caching=self.prefix_caching,
        )
        self._grammars = grammars
        self.loaded_at = time.time()

    # --- requests ---
    def _prompt_ids(self, request: GenerationRequest) -> list[int]:
        """The prompt's token ids (on a worker thread: see `_submit`)."""
        if request.messages is not None:
            if not self.tokenizer.chat_template:
                raise InvalidInputError(
                    f"model {self.model_id} has no chat template; send a prompt instead"
                )
            text = self.tokenizer.apply_chat_template(
                request.messages, tokenize=False, add_generation_prompt=True
            )
            ids = self._encode(text, special=False)
        else:
            ids = self._encode(request.prompt or "", special=True)
        if not ids:
            ids = [self.tokenizer.bos_token_id or self._scheduler_pad()]
        return ids

    def _too_long(self, count: int) -> InvalidInputError | None:
        if count < self.max_model_len:
            return None
        return InvalidInputError(
            f"the prompt has {count} tokens; this model takes at most "
            f"{self.max_model_len - 1} (MAX_MODEL_LEN={self.max_model_len})"
        )

    def _encode(self, text: str, *, special: bool) -> list[int]:
        """Token ids of `text`, refused when too long. A fast tokenizer's `encode_batch`
        releases the GIL while it works (its `encode` does not), and the length is read before
        the ids are copied into a Python list: a 1 MB prompt holds the event loop for a few
        milliseconds only."""
        tokenizer = self.tokenizer
        if tokenizer.is_fast:
            (encoding,) = tokenizer.backend_tokenizer.encode_batch(
                [text], add_special_tokens=special)
            error = self._too_long(len(encoding))
            if error is not None:
                raise error
            return list(encoding.ids)
        ids = tokenizer(text, add_special_tokens=special)["input_ids"]
        error = self._too_long(len(ids))
        if error is not None:
            raise error
        return ids

    def _scheduler_pad(self) -> int:
        assert self._scheduler is not None
        return self._scheduler.pad_id

    def _sequences(
        self, request: GenerationRequest, emit_for: Any
    ) -> list[Sequence]:
        import torch

        if self._scheduler is None:
            raise EngineUnavailableError("the model is still loading; retry in a few seconds")
        prompt_ids = self._prompt_ids(request)
        budget = min(request.max_tokens, self.max_model_len - len(prompt_ids))
        seqs = []
        for i in range(request.n):
            generator = None
            if request.seed is not None:
                generator = torch.Generator().manual_seed(request.seed + i)
            matcher = None
            if request.constraint is not None:
                matcher = self._grammars.matcher(request.constraint)
            seqs.append(
                Sequence(
                    request=request,
                    prompt_ids=prompt_ids,
                    max_tokens=budget,
                    emit=emit_for(i),
                    decode=self._decode,
                    generator=generator,
                    matcher=matcher,
                )
            )
        return seqs

    def _decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    async def _submit(self, request: GenerationRequest
                      ) -> tuple[list[Sequence], list[asyncio.Queue]]:
        """Validate, tokenise (chat template applied) and compile the constraint on a worker
        thread, so that a huge prompt or a costly grammar never blocks the event loop, then
        hand the sequences to the decode thread."""
        request.validate()
        loop = asyncio.get_running_loop()
        queues: list[asyncio.Queue] = [asyncio.Queue() for _ in range(request.n)]

        def emit_for(i: int) -> Any:
            return lambda delta: loop.call_soon_threadsafe(queues[i].put_nowait, delta)

        seqs = await asyncio.to_thread(self._sequences, request, emit_for)
        if self._scheduler is None:  # closed while the prompt was being tokenised
            raise EngineUnavailableError("the engine is closing; retry in a few seconds")
        self._live[request.request_id] = seqs
        for seq in seqs:
            self._scheduler.submit(seq)
        return seqs, queues

    async def _drain(self, q: asyncio.Queue) -> list[StreamDelta]:
        deltas: list[StreamDelta] = []
        while True:
            item = await q.get()
            if isinstance(item, BaseException):
                raise item
            deltas.append(item)
            if item.finish_reason is not None:
                return deltas

    async def generate(self, request: GenerationRequest) -> GenerationResult:
        seqs, queues = await self._submit(request)
        try:
            collected = await asyncio.gather(*(self._drain(q) for q in queues))
        except asyncio.CancelledError:
            await self.abort(request.request_id)
            raise
        finally:
            self._live.pop(request.request_id, None)
        outputs = []
        for i, deltas in enumerate(collected):
            last = deltas[-1]
            logprobs = None
            if request.logprobs is not None:
                logprobs = [lp for d in deltas for lp in (d.logprobs or [])]
            outputs.append(
                CompletionOutput(
                    text="".join(d.text for d in deltas),
                    finish_reason=last.finish_reason or "stop",
                    completion_tokens=last.completion_tokens or 0,
                    logprobs=logprobs,
                    index=i,
                )
            )
        return GenerationResult(request.request_id, outputs, len(seqs[0].prompt_ids))

    async def stream(self, request: GenerationRequest) -> AsyncIterator[StreamDelta]:
        if request.n != 1:
            raise InvalidInputError("streaming takes n=1")
        _, queues = await self._submit(request)
        finished = False
        try:
            while True:
                item = await queues[0].get()
                if isinstance(item, BaseException):
                    raise item
                yield item
                if item.finish_reason is not None:
                    finished = True
                    return
        finally:
            if not finished:
                await self.abort(request.request_id)
            self._live.pop(request.request_id, None)

    async def abort(self, request_id: str) -> None:
        for seq in self._live.get(request_id, []):
            seq.aborted = True

    async def health(self) -> EngineHealth:
        import torch

        return EngineHealth(
            loaded=self._scheduler is not None,
            device=self.device,
            gpu_available=torch.cuda.is_available(),
        )

    async def models(self) -> list[ModelInfo]:
        gpu_gb = None
        if self.device.startswith("cuda") and self.model is not None:
            import torch

            gpu_gb = round(torch.cuda.memory_allocated() / 2**30, 3)
        return [
            ModelInfo(
                id=self.model_id,
                created=int(self.loaded_at or 0),
                loaded_at=self.loaded_at,
                gpu_memory_gb=gpu_gb,
                max_model_len=self.max_model_len,
            )
        ]

    @property
    def queue_depth(self) -> int:
        return self._scheduler.queue_depth if self._scheduler else 0

    @property
    def running(self) -> int:
        """Sequences being decoded now."""
        return self._scheduler.running if self._scheduler else 0

    def count_tokens(self, text: str) -> int:
        if self.tokenizer is None:
            return super().count_tokens(text)
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    async def close(self) -> None:
        if self._scheduler is not None:
            scheduler, self._scheduler = self._scheduler, None
            await asyncio.to_thread(scheduler.close)
