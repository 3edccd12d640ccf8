"""`/predict` batch mode vs one request at a time, on one real server, measured side by side.

Starts `evalserve serve` (bundled model, BATCH_MODE=1, TEMPERATURE=0), waits for `GET /`
like a grader, then sends the same prompts (half Chinese, half English, from examples/) as
sequential single `POST /predict` requests and as one batch `POST /predict`.

Prints:
  batch ratio = output tokens/s of one batch POST of N prompts
                / output tokens/s of the same N prompts as sequential single POSTs
                (bar: >= 4x with N = 32)
Output tokens are the tokens of the returned answers, counted with the bundled model's
tokenizer. The machine may be shared: both rates are measured in the same run, alternating
rounds, and the ratio uses the sums over all rounds.

Run: .venv/bin/python benchmarks/predict_throughput.py [--prompts 32] [--max-tokens 48]
     [--rounds 1]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from evalserve.generation.bench import token_counter
from evalserve.settings import load_settings

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache" / "models"


def prompts(n: int) -> list[str]:
    zh = [json.loads(line)["prompt"] for line in (ROOT / "examples" / "qa_zh.jsonl").open()]
    en = [json.loads(line)["prompt"] for line in (ROOT / "examples" / "qa_en.jsonl").open()]
    mixed = [p for pair in zip(zh, en) for p in pair]
    return [mixed[i % len(mixed)] for i in range(n)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(tmp: str, n: int, max_tokens: int) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "DATA_DIR": tmp, "MODEL_CACHE_DIR": str(CACHE), "METRICS_PORT": "0",
           "HOST": "127.0.0.1", "PORT": str(port), "LOG_LEVEL": "warning", "BATCH_MODE": "1",
           "TEMPERATURE": "0", "MAX_NEW_TOKENS": str(max_tokens), "MAX_NUM_SEQS": str(n)}
    for name in ("MODEL_NAME", "MODEL_ID", "ENGINE", "VLLM_ENDPOINT", "API_TOKEN", "WARMUP_FILE"):
        env.pop(name, None)
    log = open(Path(tmp) / "server.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "evalserve", "serve"], env=env,
                            stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError((Path(tmp) / "server.log").read_text()[-3000:])
        try:
            if httpx.get(url + "/", timeout=5).status_code == 200:
                return proc, url
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise TimeoutError("server did not become ready")


def timed(fn) -> tuple[list[str], float]:
    start = time.perf_counter()
    answers = fn()
    return answers, time.perf_counter() - start


def main(n: int, max_tokens: int, rounds: int) -> None:
    count, counter = token_counter(load_settings(model_cache_dir=CACHE))
    batch_prompts = prompts(n)
    with tempfile.TemporaryDirectory() as tmp:
        proc, url = start_server(tmp, n, max_tokens)
        try:
            client = httpx.Client(base_url=url, timeout=900)

            def single() -> list[str]:
                return [client.post("/predict", json={"prompt": p}).json()["response"]
                        for p in batch_prompts]

            def batch() -> list[str]:
                answers = client.post("/predict", json={"prompt": batch_prompts}).json()
                assert len(answers["response"]) == n, answers
                return answers["response"]

            client.post("/predict", json={"prompt": batch_prompts[:2]})  # warm-up
            seq_tokens = seq_time = bat_tokens = bat_time = 0.0
            for _ in range(rounds):
                answers, elapsed = timed(single)
                seq_tokens += sum(count(a) for a in answers)
                seq_time += elapsed
                answers, elapsed = timed(batch)
                bat_tokens += sum(count(a) for a in answers)
                bat_time += elapsed
        finally:
            proc.terminate()
            proc.wait(30)
    sequential, batched = seq_tokens / seq_time, bat_tokens / bat_time
    print(f"prompts: {n}  max_tokens: {max_tokens}  rounds: {rounds}  counted with: {counter}")
    print(f"sequential singles {sequential:8.1f} output tokens/s  "
          f"({seq_tokens:.0f} tokens in {seq_time:.1f} s)")
    print(f"one batch POST     {batched:8.1f} output tokens/s  "
          f"({bat_tokens:.0f} tokens in {bat_time:.1f} s)")
    print(f"batch ratio {batched / sequential:6.2f}x  (bar >= 4)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    main(args.prompts, args.max_tokens, args.rounds)
