"""Continuous batching for an in-process transformers model, on one worker thread.

Sequences wait in a queue. The thread gathers them for a few milliseconds, prefills them in
groups of similar length, and merges them into the running batch: every decode step advances
all running sequences by one token, finished ones leave at once and waiting ones join at the
next step, so the batch stays as full as `capacity` allows. Direct requests go before
background ones (`GenerationRequest.background`: a job's items), and background ones leave
`reserve` slots free, so a `/v1` call starts at once while jobs keep the engine busy. Prompt
prefixes shared by a group (a
rubric's instructions and examples) are computed once and reused (`PrefixCache`). The
asyncio loop never blocks.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from typing import Any

from evalserve.engines.transformers.prefix_cache import PrefixCache
from evalserve.engines.transformers.sampling import sample_next_tokens
from evalserve.engines.transformers.sequence import Sequence

__all__ = ["DecodeScheduler"]

log = logging.getLogger(__name__)


class DecodeScheduler:
    """Owns the model while running; `submit` and `abort` are thread-safe."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        capacity: int,
        reserve: int = 0,
        eos_ids: frozenset[int],
        grammars: Any,
        gather_seconds: float = 0.004,
        prefill_token_budget: int = 8192,
        prefix_caching: bool = True,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.capacity = capacity
        self.background_limit = max(1, capacity - reserve)
        """Most background (job) sequences decoding at once: `reserve` slots stay free for
        direct requests, which then start at once however busy the jobs keep the engine."""
        self.eos_ids = eos_ids
        self.grammars = grammars
        self.gather_seconds = gather_seconds
        self.prefill_token_budget = prefill_token_budget
        self.prefix_cache = PrefixCache() if prefix_caching else None
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self._waiting: queue.Queue[Sequence | None] = queue.Queue()
        # submitted sequences the decode thread has taken but not admitted yet (its own)
        self._direct: deque[Sequence] = deque()
        self._background: deque[Sequence] = deque()
        self._running: list[Sequence] = []
        self._cache: Any = None
        self._mask: Any = None
        self._closed = False
        self._token_text: dict[int, str] = {}
        self._thread = threading.Thread(target=self._loop, name="evalserve-decode", daemon=True)
        self._thread.start()

    # --- public, any thread ---
    def submit(self, seq: Sequence) -> None:
        self._waiting.put(seq)

    @property
    def queue_depth(self) -> int:
        return self._waiting.qsize() + len(self._direct) + len(self._background)

    @property
    def running(self) -> int:
        return len(self._running)

    def close(self) -> None:
        self._closed = True
        self._waiting.put(None)
        self._thread.join(timeout=30)

    # --- decode thread ---
    def token_text(self, token: int) -> str:
        text = self._token_text.get(token)
        if text is None:
            text = self.tokenizer.decode([token])
            self._token_text[token] = text
        return text

    def _loop(self) -> None:
        import torch

        # Denormal activations make CPU matmuls about 4x slower on the bundled model; the flag
        # is per thread, so it is set here, on the thread that runs the model.
        torch.set_flush_denormal(True)
        with torch.inference_mode():
            while not self._closed:
                fresh: list[Sequence] = []
                try:
                    fresh = self._collect()
                    if fresh:
                        self._admit(fresh)
                    if self._running:
                        self._step()
                except Exception as exc:  # the thread must go on serving
                    # What one sequence raises ends that sequence alone (`_accept`); what
                    # reaches here is the model forward or the batch bookkeeping, so the
                    # batch's KV cache is lost: its sequences fail, later requests are served.
                    log.exception("decode step failed; failing the sequences of this batch")
                    self._fail(self._running + fresh, exc)
                    self._running, self._cache, self._mask = [], None, None

    @staticmethod
    def _fail(seqs: list[Sequence], exc: BaseException) -> None:
        for seq in seqs:
            seq.fail(exc)  # a no-op for one that already finished

    @staticmethod
    def _failed(seq: Sequence, exc: Exception) -> None:
        log.warning("request %s: a sequence failed: %s: %s", seq.request.request_id,
                    type(exc).__name__, exc, exc_info=exc)
        seq.fail(exc)

    def _isolated(self, seq: Sequence, action: Any, *args: Any) -> None:
        """Run one sequence's action; what it raises ends that sequence, not the batch."""
        try:
            action(*args)
        except Exception as exc:
            self._failed(seq, exc)

    def _collect(self) -> list[Sequence]:
        """Sequences to admit now: direct ones first, then background ones while fewer than
        `background_limit` of those run (the others wait in arrival order)."""
        room = self.capacity - len(self._running)
        if room <= 0:
            return []
        self._arrive(block=not self._running and not self._direct and not self._background,
                     room=room)
        for pending in (self._direct, self._background):
            for seq in [s for s in pending if s.aborted]:
                pending.remove(seq)
                self._drop_if_aborted(seq)
        fresh: list[Sequence] = []
        while self._direct and len(fresh) < room:
            fresh.append(self._direct.popleft())
        running_background = sum(1 for s in self._running if s.request.background)
        background_room = min(room - len(fresh), self.background_limit - running_background)
        while self._background and background_room > 0:
            fresh.append(self._background.popleft())
            background_room -= 1
        return fresh

    def _arrive(self, *, block: bool, room: int) -> None:
        """Move submitted sequences into the direct and background lines. With `block` (nothing
        to run), wait for the first one, then gather for `gather_seconds` so that requests
        arriving together share one prefill."""
        arrived = 0
        if block:
            first = self._waiting.get()
            if first is None:
                return
            self._line(first)
            arrived = 1
            deadline = time.monotonic() + self.gather_seconds
            while arrived < room:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    item = self._waiting.get(timeout=remaining)
                except queue.Empty:
                    break
                if item is None:
                    return
                self._line(item)
                arrived += 1
        while True:  # everything already submitted: a direct request must not wait unseen
            try:
                item = self._waiting.get_nowait()
            except queue.Empty:
                return
            if item is None:
                return
            self._line(item)

    def _line(self, seq: Sequence) -> None:
        (self._background if seq.request.background else self._direct).append(seq)

    def _drop_if_aborted(self, seq: Sequence) -> bool:
        if seq.aborted:
            self._isolated(seq, seq.abort)
            return True
        return False

    def _admit(self, fresh: list[Sequence]) -> None:
        fresh.sort(key=lambda s: len(s.prompt_ids))
        group: list[Sequence] = []
        for seq in fresh:
            # sorted by length: this sequence is the longest of the group it would join
            if group and len(seq.prompt_ids) * (len(group) + 1) > self.prefill_token_budget:
                self._prefill_or_fail(group)
                group = []
            group.append(seq)
        if group:
            self._prefill_or_fail(group)

    def _prefill_or_fail(self, group: list[Sequence]) -> None:
        """Prefill one group; if its forward fails, that group fails and the running batch
        (whose cache the prefill does not touch until `_merge`) goes on."""
        merged = len(self._running)
        try:
            self._prefill(group)
        except Exception as exc:
            if len(self._running) != merged:  # failed inside `_merge`: the batch is unsound
                raise
            log.exception("prefill failed; failing the %d sequences of its group", len(group))
            self._fail(group, exc)

    def _shared_prefix(self, group: list[Sequence]) -> tuple[int, Any]:
        """(length, per-layer KV) of a cached or newly computed prefix all prompts share."""
        import os

        import torch
        from transformers import DynamicCache

        cache = self.prefix_cache
        if cache is None:
            return 0, None
        prompts = [s.prompt_ids for s in group]
        limit = min(len(p) for p in prompts) - 1  # every row keeps a token to prefill
        hit_len, hit_kv = cache.lookup(prompts, limit)
        common = min(len(os.path.commonprefix(prompts)), limit) if len(group) > 1 else 0
        if common >= cache.min_tokens and common > hit_len + cache.min_tokens:
            ids = torch.tensor([prompts[0][:common]], dtype=torch.long, device=self.model.device)
            out = self.model(input_ids=ids, past_key_values=DynamicCache(), use_cache=True,
                             logits_to_keep=1)
            kv = [(layer.keys, layer.values) for layer in out.past_key_values.layers]
            cache.store(prompts[0][:common], kv)
            return common, kv
        if hit_len >= cache.min_tokens:
            return hit_len, hit_kv
        return 0, None

    def _prefill(self, group: list[Sequence]) -> None:
        import torch
        from transformers import DynamicCache

        device = self.model.device
        start, prefix_kv = self._shared_prefix(group)
        # Layout per row: [shared prefix | left padding | the row's own tokens].
        width = max(len(s.prompt_ids) - start for s in group)
        ids = torch.full((len(group), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(group), start + width), dtype=torch.long)
        mask[:, :start] = 1
        for row, seq in enumerate(group):
            own = seq.prompt_ids[start:]
            ids[row, width - len(own) :] = torch.tensor(own, dtype=torch.long)
            mask[row, start + width - len(own) :] = 1
        positions = (mask.cumsum(-1) - 1).clamp(min=0)[:, start:]
        past = DynamicCache()
        if prefix_kv is not None:
            n = len(group)
            past = DynamicCache([(k.expand(n, -1, -1, -1).contiguous(),
                                  v.expand(n, -1, -1, -1).contiguous()) for k, v in prefix_kv])
        out = self.model(
            input_ids=ids.to(device),
            attention_mask=mask.to(device),
            position_ids=positions.to(device),
            past_key_values=past,
            use_cache=True,
            logits_to_keep=1,
        )
        self._accept(group, out.logits[:, -1, :])
        keep = [i for i, s in enumerate(group) if s.finish_reason is None]
        if not keep:
            return
        cache = out.past_key_values
        if len(keep) < len(group):
            cache.batch_select_indices(torch.tensor(keep, device=device))
            mask = mask[keep]
        self._merge([group[i] for i in keep], cache, mask.to(device))

    def _merge(self, group: list[Sequence], cache: Any, mask: Any) -> None:
        import torch
        from transformers import DynamicCache

        if not self._running:
            self._running, self._cache, self._mask = group, cache, mask
            return
        old_len, new_len = self._mask.shape[1], mask.shape[1]
        width = max(old_len, new_len)

        def pad(t: Any, extra: int, dim: int) -> Any:
            if extra == 0:
                return t
            shape = list(t.shape)
            shape[dim] = extra
            return torch.cat([t.new_zeros(shape), t], dim=dim)

        layers = []
        for old, new in zip(self._cache.layers, cache.layers):
            keys = torch.cat([pad(old.keys, width - old_len, 2), pad(new.keys, width - new_len, 2)])
            values = torch.cat(
                [pad(old.values, width - old_len, 2), pad(new.values, width - new_len, 2)]
            )
            layers.append((keys, values))
        self._cache = DynamicCache(layers)
        self._mask = torch.cat([pad(self._mask, width - old_len, 1), pad(mask, width - new_len, 1)])
        self._running = self._running + group

    def _step(self) -> None:
        import torch

        device = self.model.device
        seqs = self._running
        ids = torch.tensor([[s.last_token] for s in seqs], dtype=torch.long, device=device)
        positions = torch.tensor([[s.position] for s in seqs], dtype=torch.long, device=device)
        self._mask = torch.cat([self._mask, self._mask.new_ones((len(seqs), 1))], dim=1)
        out = self.model(
            input_ids=ids,
            attention_mask=self._mask,
            position_ids=positions,
            past_key_values=self._cache,
            use_cache=True,
        )
        self._cache = out.past_key_values
        self._accept(seqs, out.logits[:, -1, :])
        keep = [i for i, s in enumerate(seqs) if s.finish_reason is None]
        if len(keep) == len(seqs):
            return
        if not keep:
            self._running, self._cache, self._mask = [], None, None
            return
        self._running = [seqs[i] for i in keep]
        self._cache.batch_select_indices(torch.tensor(keep, device=device))
        self._mask = self._mask[keep]
        self._trim_left()

    def _trim_left(self) -> None:
        """Drop leading columns that are padding for every remaining row."""
        used = self._mask.any(dim=0).nonzero()
        start = int(used[0]) if len(used) else 0
        if start > 0:
            self._mask = self._mask[:, start:]
            for layer in self._cache.layers:
                layer.keys = layer.keys[:, :, start:]
                layer.values = layer.values[:, :, start:]

    def _accept(self, seqs: list[Sequence], logits: Any) -> None:
        """Sample and append one token per live sequence; a sequence whose sampling, grammar,
        stop handling or emit raises ends with that error, the others go on."""
        for seq in seqs:
            if seq.aborted:
                self._isolated(seq, seq.abort)
        live = [s for s in seqs if s.finish_reason is None]
        if not live:
            return
        rows = [i for i, s in enumerate(seqs) if s.finish_reason is None]
        chosen = sample_next_tokens(logits[rows], live, self.grammars, self.token_text)
        for seq, choice in zip(live, chosen):
            if isinstance(choice, Exception):
                self._failed(seq, choice)
            else:
                token, logprob = choice
                self._isolated(seq, seq.append, token, self.eos_ids, logprob)
