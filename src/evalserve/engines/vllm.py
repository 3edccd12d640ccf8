"""The optional in-process vLLM engine (`ENGINE=vllm`, `pip install evalserve[vllm]`).

Written against vLLM's `AsyncLLM` (v1 engine, vLLM >= 0.10, `StructuredOutputsParams` from
0.11). It is never imported unless selected, and it is not exercised by the test suite (vLLM
needs a GPU); for production GPU serving the tested path is `vllm serve` behind the `openai`
engine.
"""

from __future__ import annotations

import asyncio
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
    TokenLogprob,
)
from evalserve.errors import (
    ConfigurationError,
    EngineError,
    EngineUnavailableError,
    InvalidInputError,
)

if TYPE_CHECKING:
    from evalserve.settings import Settings

__all__ = ["VLLMEngine"]


def _import_vllm() -> Any:
    try:
        import vllm
    except ImportError:
        raise ConfigurationError(
            "ENGINE=vllm needs vLLM: pip install evalserve[vllm] (or serve with `vllm serve` "
            "and set VLLM_ENDPOINT to use the openai engine)") from None
    return vllm


class VLLMEngine(Engine):
    """vLLM's async engine in this process; batching and constraints are vLLM's."""

    supports_logprobs = True
    supports_constraints = True

    def __init__(self, settings: Settings) -> None:
        if not settings.model_name:
            raise ConfigurationError("ENGINE=vllm needs MODEL_NAME (a local model directory)")
        self.settings = settings
        self.capacity = settings.max_num_seqs
        self._engine: Any = None
        self._tokenizer: Any = None
        self.loaded_at: float | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> VLLMEngine:
        _import_vllm()
        return cls(settings)

    @property
    def model_id(self) -> str:
        return str(self.settings.model_name)

    async def start(self) -> None:
        vllm = _import_vllm()
        from vllm.v1.engine.async_llm import AsyncLLM

        s = self.settings
        args = vllm.AsyncEngineArgs(
            model=s.model_name, dtype=s.dtype, max_model_len=s.max_model_len,
            gpu_memory_utilization=s.gpu_memory_utilization,
            tensor_parallel_size=s.tensor_parallel_size, max_num_seqs=s.max_num_seqs,
            block_size=s.block_size, enable_prefix_caching=s.enable_prefix_caching,
        )
        self._engine = AsyncLLM.from_engine_args(args)
        self._tokenizer = await self._engine.get_tokenizer()
        self.loaded_at = time.time()

    def _params(self, request: GenerationRequest, delta: bool) -> Any:
        from vllm import SamplingParams
        from vllm.sampling_params import RequestOutputKind, StructuredOutputsParams

        request.validate()  # ours first: the field is named the same way for every engine
        structured = None
        c = request.constraint
        if c is not None:
            structured = StructuredOutputsParams(
                json=c.json_schema, regex=c.regex,
                choice=list(c.choice) if c.choice else None, json_object=c.json_object or None)
        return SamplingParams(
            n=request.n, max_tokens=request.max_tokens, temperature=request.temperature,
            top_p=request.top_p, stop=request.stop or None, seed=request.seed,
            presence_penalty=request.presence_penalty,
            frequency_penalty=request.frequency_penalty,
            repetition_penalty=request.repetition_penalty, logprobs=request.logprobs,
            structured_outputs=structured,
            output_kind=RequestOutputKind.DELTA if delta else RequestOutputKind.FINAL_ONLY,
        )

    async def _prompt(self, request: GenerationRequest) -> str:
        """The prompt text; a chat template is rendered on a worker thread, off the loop."""
        if request.messages is None:
            return str(request.prompt)
        return await asyncio.to_thread(self._tokenizer.apply_chat_template, request.messages,
                                       tokenize=False, add_generation_prompt=True)

    def _logprobs(self, out: Any, k: int | None) -> list[TokenLogprob] | None:
        if k is None or out.logprobs is None:
            return None
        items = []
        for token_id, step in zip(out.token_ids, out.logprobs):
            chosen = step[token_id]
            ranked = sorted(step.values(), key=lambda lp: lp.rank or 0)[:k]
            items.append(TokenLogprob(chosen.decoded_token or "", chosen.logprob,
                                      [(lp.decoded_token or "", lp.logprob) for lp in ranked]))
        return items

    def _live(self) -> Any:
        if self._engine is None:
            raise EngineUnavailableError("the model is still loading; retry in a few seconds")
        return self._engine

    async def generate(self, request: GenerationRequest) -> GenerationResult:
        final = None
        async for out in self._live().generate(await self._prompt(request),
                                               self._params(request, delta=False),
                                               request.request_id):
            final = out
        if final is None:
            raise EngineError("vLLM returned no output")
        outputs = [CompletionOutput(o.text, o.finish_reason or "abort", len(o.token_ids),
                                    self._logprobs(o, request.logprobs), index=o.index)
                   for o in final.outputs]
        return GenerationResult(request.request_id, outputs, len(final.prompt_token_ids or []))

    async def stream(self, request: GenerationRequest) -> AsyncIterator[StreamDelta]:
        if request.n != 1:
            raise InvalidInputError("streaming takes n=1")
        count = 0
        finished = False
        try:
            async for out in self._live().generate(await self._prompt(request),
                                                   self._params(request, delta=True),
                                                   request.request_id):
                o = out.outputs[0]
                count += len(o.token_ids)
                delta = StreamDelta(o.text, o.finish_reason,
                                    self._logprobs(o, request.logprobs))
                if o.finish_reason is not None:
                    delta.prompt_tokens = len(out.prompt_token_ids or [])
                    delta.completion_tokens = count
                    finished = True
                yield delta
        finally:
            if not finished:
                await self.abort(request.request_id)

    async def abort(self, request_id: str) -> None:
        if self._engine is not None:
            await self._engine.abort(request_id)

    async def health(self) -> EngineHealth:
        return EngineHealth(loaded=self._engine is not None, device="cuda", gpu_available=True)

    async def models(self) -> list[ModelInfo]:
        return [ModelInfo(id=self.model_id, created=int(self.loaded_at or 0),
                          loaded_at=self.loaded_at, max_model_len=self.settings.max_model_len)]

    def count_tokens(self, text: str) -> int:
        if self._tokenizer is None:
            return super().count_tokens(text)
        return len(self._tokenizer.encode(text, add_special_tokens=False))

    async def close(self) -> None:
        if self._engine is not None:
            engine, self._engine = self._engine, None
            engine.shutdown()
