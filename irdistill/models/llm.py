"""Two ways to run an LLM: in-process with transformers (any causal LM, GGUF files too), or an OpenAI-compatible
HTTP endpoint (vLLM, llama.cpp's server, TGI). Both speak chat messages and give next-token log-probabilities."""

from __future__ import annotations

import os

import numpy as np

from ..errors import InputError
from .hub import fingerprint, locate
from .http import JSONEndpoint


def _variants(label: str) -> set[str]:
    """Spellings of a label an LLM may start its answer with."""
    return {v for base in (label, label.lower(), label.capitalize(), label.upper()) for v in (base, " " + base)}


class TransformersLM:
    """A causal LM in this process. ``gguf_file`` loads a GGUF file from the ``model`` folder (dequantised).
    ``min_shared_prefix``: the fewest tokens all prompts of a ``generate`` call must share for them to be run once."""

    min_shared_prefix = 16

    def __init__(self, model: str, gguf_file: str | None = None, device: str | None = None, dtype: str | None = None,
                 trust_remote_code: bool = False, max_length: int = 4096):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.name, self.gguf_file, self.max_length = model, gguf_file, max_length
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.dtype = dtype or ("bfloat16" if self.device.startswith("cuda") else "float32")
        path = locate(model)
        if gguf_file is None and os.path.isdir(path) and not os.path.exists(os.path.join(path, "config.json")):
            ggufs = sorted(f for f in os.listdir(path) if f.endswith(".gguf"))
            gguf_file = self.gguf_file = ggufs[0] if len(ggufs) == 1 else None
        kw = {"gguf_file": gguf_file} if gguf_file else {}
        self.tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code, **kw)
        self.tokenizer.padding_side = self.tokenizer.truncation_side = "left"  # the answer comes right after the prompt
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model = AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, self.dtype),
                                                          trust_remote_code=trust_remote_code, **kw).to(self.device).eval()
        self.version = fingerprint(os.path.join(path, gguf_file) if gguf_file else path)

    def describe(self) -> dict:
        return {"backend": "transformers", "model": self.name, "gguf_file": self.gguf_file, "version": self.version,
                "dtype": self.dtype}

    def _prompts(self, chats: list[list[dict]]) -> list[str]:
        return [self.tokenizer.apply_chat_template(c, add_generation_prompt=True, tokenize=False) for c in chats]

    def _batch(self, prompts: list[str]):
        return self.tokenizer(prompts, return_tensors="pt", padding=True, truncation=True, max_length=self.max_length,
                              add_special_tokens=False).to(self.device)

    def label_logprobs(self, chats: list[list[dict]], labels: list[str], batch_size: int = 8) -> np.ndarray:
        """``[len(chats), len(labels)]``: log P(answer starts with the label), summed over the label's spellings."""
        import torch

        ids = [sorted({self.tokenizer.encode(v, add_special_tokens=False)[0] for v in _variants(lab)}) for lab in labels]
        out = np.zeros((len(chats), len(labels)), dtype=np.float32)
        prompts = self._prompts(chats)
        with torch.inference_mode():
            for i in range(0, len(prompts), batch_size):
                logits = self.model(**self._batch(prompts[i : i + batch_size])).logits[:, -1, :].float()
                logp = torch.log_softmax(logits, -1)
                for j, tok in enumerate(ids):
                    out[i : i + batch_size, j] = torch.logsumexp(logp[:, tok], -1).cpu().numpy()
        return out

    def generate(self, chats: list[list[dict]], max_tokens: int = 200, *, temperature: float = 0.0, top_p: float = 1.0,
                 n: int = 1, seed: int | None = None, stop: list[str] | None = None, batch_size: int = 8) -> list[str]:
        """``len(chats) * n`` completions, the ``n`` of each chat together. ``temperature`` 0 is greedy (``n`` copies of
        one answer); above 0 samples with ``top_p`` under ``seed`` (the global torch RNG is left as it was). Prompts go
        ``batch_size`` at a time, sorted by length; a completion ends at EOS, ``max_tokens`` or the first of the
        ``stop`` strings (cut off).

        Work shared between prompts is done once: the tokens every prompt of the call starts with (system prompt,
        few-shot examples) are run once and their key/value cache reused by every batch, and the ``n`` samples of a
        prompt share one pass over it. Greedy answers are those of one prompt at a time."""
        import torch

        sample = temperature > 0
        ids = [x[-self.max_length:] for x in
               self.tokenizer(self._prompts(chats), add_special_tokens=False)["input_ids"]]
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        shared = _common_prefix(ids) - 1 if len(ids) > 1 else 0  # at least one token of each prompt stays out
        done: dict[int, list[str]] = {}
        opts = {"do_sample": True, "temperature": temperature, "top_p": top_p, "num_return_sequences": n} if sample else \
            {"do_sample": False}
        if stop:
            opts.update(stop_strings=list(stop), tokenizer=self.tokenizer)
        devices = [torch.device(self.device).index or 0] if self.device.startswith("cuda") else []
        with torch.inference_mode(), torch.random.fork_rng(devices=devices):
            if seed is not None:
                torch.manual_seed(seed)
            prefix = self._run(torch.tensor([ids[0][:shared]], device=self.device)) if shared >= self.min_shared_prefix else None
            for b in range(0, len(order), max(1, batch_size)):
                rows = order[b : b + max(1, batch_size)]
                enc = self._pad([ids[i] for i in rows], shared if prefix else 0)
                extra = self._prefill(enc, prefix, shared if prefix else 0, n if sample else 1)
                gen = self.model.generate(**enc, max_new_tokens=max_tokens, pad_token_id=self.tokenizer.pad_token_id,
                                          **{**opts, **extra})
                texts = self.tokenizer.batch_decode(gen[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
                per = n if sample else 1
                for j, i in enumerate(rows):
                    outs = [_cut(t, stop) for t in texts[j * per : (j + 1) * per]]
                    done[i] = outs if sample else outs * n
        return [t for i in range(len(ids)) for t in done[i]]

    def _pad(self, rows: list[list[int]], shared: int) -> dict:
        """Token ids and attention mask: the ``shared`` first tokens, then padding, then the rest of each prompt (with
        no shared part: plain left padding, so every answer starts right after its prompt)."""
        import torch

        pad, width = self.tokenizer.pad_token_id, max(len(r) for r in rows) - shared
        ids = [r[:shared] + [pad] * (width - len(r) + shared) + r[shared:] for r in rows]
        mask = [[1] * shared + [0] * (width - len(r) + shared) + [1] * (len(r) - shared) for r in rows]
        return {"input_ids": torch.tensor(ids, device=self.device), "attention_mask": torch.tensor(mask, device=self.device)}

    def _run(self, ids, mask=None, cache=None, start: int = 0):
        """One forward pass over ``ids`` (positions counted over ``mask``'s real tokens, from ``start``) that fills
        ``cache``; returns the cache."""
        import torch

        mask = torch.ones_like(ids) if mask is None else mask
        pos = (mask.long().cumsum(-1) - 1).clamp(min=0)[:, start:]
        kw = {} if cache is None else {self._cache_name: cache}
        out = self.model(input_ids=ids[:, start:], attention_mask=mask, position_ids=pos, use_cache=True, **kw)
        self._cache_name = "cache" if getattr(out, "cache", None) is not None else "past_key_values"  # transformers 5
        return getattr(out, self._cache_name)

    def _prefill(self, enc, prefix, shared: int, n: int) -> dict:
        """``generate`` arguments that start it from a filled cache: the shared ``prefix`` copied to every row, then
        each prompt but its last token, then repeated ``n`` times (``enc`` is repeated to match). ``{}``: nothing to
        share, or a cache type that cannot be copied this way."""
        import copy

        ids, mask = enc["input_ids"], enc["attention_mask"]
        if (prefix is None and n == 1) or ids.shape[1] - shared < 2:
            return {}
        cache = None
        if prefix is not None:
            cache = copy.deepcopy(prefix)
            if not hasattr(cache, "batch_repeat_interleave"):
                return {}
            cache.batch_repeat_interleave(ids.shape[0])
        cache = self._run(ids[:, :-1], mask[:, :-1], cache, shared)
        if n > 1:
            if not hasattr(cache, "batch_repeat_interleave"):
                return {}
            cache.batch_repeat_interleave(n)
            enc["input_ids"], enc["attention_mask"] = ids.repeat_interleave(n, 0), mask.repeat_interleave(n, 0)
        return {self._cache_name: cache, "num_return_sequences": 1}


def _common_prefix(seqs: list[list[int]]) -> int:
    """The number of leading tokens all ``seqs`` share."""
    first, k = seqs[0], min(map(len, seqs))
    for s in seqs[1:]:
        i = 0
        while i < k and s[i] == first[i]:
            i += 1
        k = i
    return k


def _cut(text: str, stop: list[str] | None) -> str:
    """``text`` up to the first of the ``stop`` strings."""
    for s in stop or ():
        text = text.split(s, 1)[0]
    return text


class OpenAIEndpoint:
    """An OpenAI-compatible ``/v1/chat/completions`` endpoint; greedy decoding (temperature 0) unless asked to sample.

    Credentials go only where they belong: ``api_key`` (or ``user:password@`` in the URL) to this endpoint;
    ``$OPENAI_API_KEY`` only to api.openai.com. A key is never sent over plain http to a host other than this machine
    unless ``allow_insecure`` says so. The URL is kept and shown without its credentials."""

    def __init__(self, base_url: str, model: str, api_key: str | None = None, top_logprobs: int = 20, timeout: float = 300,
                 request: dict | None = None, allow_insecure: bool = False, retries: int = 2):
        self.http = JSONEndpoint(base_url, api_key, "OPENAI_API_KEY", ("api.openai.com",), timeout, allow_insecure,
                                 retries, backoff=0.5, what="LLM endpoint")
        self.base_url, self.headers = self.http.base_url, self.http.headers
        self.model, self.top_logprobs = model, top_logprobs
        self.request = request or {}  # extra request fields, e.g. {"logit_bias": {"2": -100}} to keep EOS out of reach

    def describe(self) -> dict:
        return {"backend": "openai", "model": self.model, "base_url": self.base_url, "request": self.request}

    def _chat(self, messages: list[dict], **params) -> dict:
        """The answer to one request, checked to be one (``_problem``); a redirect is refused, not followed."""
        body = {"model": self.model, "messages": messages, "temperature": 0, **self.request, **params}
        answer = self.http.post("/v1/chat/completions", body)
        problem = _problem(answer, params.get("n", 1), bool(params.get("logprobs")))
        if problem:
            raise InputError(f"LLM endpoint {self.http.url('/v1/chat/completions')} gave no answer to the request: "
                             f"{problem}")
        return answer

    def label_logprobs(self, chats: list[list[dict]], labels: list[str], batch_size: int = 8) -> np.ndarray:
        """From the top log-probabilities of the first answer token; a label not among them gets the lowest one shown
        (an upper bound of its own). An answer that ends at once (no token) scores 0 for every label."""
        out = np.zeros((len(chats), len(labels)), dtype=np.float32)
        for i, chat in enumerate(chats):
            resp = self._chat(chat, max_tokens=1, logprobs=True, top_logprobs=self.top_logprobs)
            content = (resp["choices"][0].get("logprobs") or {}).get("content") or []
            top = content[0]["top_logprobs"] if content else []
            if not top:
                continue
            floor = min(t["logprob"] for t in top)
            for j, lab in enumerate(labels):
                hits = [t["logprob"] for t in top if t["token"] in _variants(lab)]
                out[i, j] = np.logaddexp.reduce(hits) if hits else floor
        return out

    def generate(self, chats: list[list[dict]], max_tokens: int = 200, *, temperature: float = 0.0, top_p: float = 1.0,
                 n: int = 1, seed: int | None = None, stop: list[str] | None = None, batch_size: int = 1) -> list[str]:
        """As ``TransformersLM.generate``; ``batch_size`` requests are in flight at once (servers such as vLLM batch
        them). ``n`` > 1 asks for ``n`` choices per request and requests any the server did not return one by one
        (seeds ``seed + 1``, ...). Sampling fields are sent only when sampling, so ``request`` and the server decide
        the rest."""
        from concurrent.futures import ThreadPoolExecutor

        params = {"max_tokens": max_tokens}
        if temperature > 0:
            params.update(temperature=temperature, **({"top_p": top_p} if top_p < 1 else {}))
        if stop:
            params["stop"] = list(stop)

        sample = temperature > 0

        def one(chat: list[dict]) -> list[str]:
            extra = {"n": n} if sample and n > 1 else {}
            seeded = lambda j: {"seed": seed + j} if sample and seed is not None else {}
            choices = self._chat(chat, **params, **extra, **seeded(0))["choices"]
            outs = [_cut(c["message"]["content"] or "", stop) for c in choices][:n]
            while sample and len(outs) < n:
                outs.append(_cut(self._chat(chat, **params, **seeded(len(outs)))["choices"][0]["message"]["content"]
                                 or "", stop))
            return outs if sample else outs[:1] * n

        if batch_size <= 1 or len(chats) <= 1:
            results = [one(c) for c in chats]
        else:
            with ThreadPoolExecutor(batch_size) as pool:
                results = list(pool.map(one, chats))
        return [t for outs in results for t in outs]


def _number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and np.isfinite(x)


def _problem(answer, n: int, logprobs: bool) -> str | None:
    """Why ``answer`` is not a chat completion of ``n`` choices (each with its message, or its first token's top
    log-probabilities when ``logprobs`` were asked for); None if it is one."""
    if not isinstance(answer, dict):
        return "not a JSON object"
    choices = answer.get("choices")
    if not isinstance(choices, list) or not 1 <= len(choices) <= n or not all(isinstance(c, dict) for c in choices):
        return f"expected 'choices', a list of {'1' if n == 1 else f'1 to {n}'} objects"
    for c in choices:
        if logprobs:
            content = c["logprobs"].get("content") if isinstance(c.get("logprobs"), dict) else None
            if not isinstance(content, list):
                return "no logprobs (does the server return them?)"
            first = content[0] if content else {"top_logprobs": []}  # no token: the answer ended at once
            top = first.get("top_logprobs") if isinstance(first, dict) else None
            if not isinstance(top, list) or not all(isinstance(t, dict) and isinstance(t.get("token"), str) and
                                                    _number(t.get("logprob")) for t in top):
                return "malformed top_logprobs"
        elif not isinstance(c.get("message"), dict) or not isinstance(c["message"].get("content"), (str, type(None))):
            return "a choice without a message"
    return None


def make_backend(model: str, endpoint: str | None = None, gguf_file: str | None = None, **kwargs):
    """``endpoint`` given: the HTTP backend; else transformers in-process."""
    if endpoint:
        return OpenAIEndpoint(endpoint, model, **{k: v for k, v in kwargs.items()
                                                  if k in ("api_key", "top_logprobs", "request", "allow_insecure")})
    return TransformersLM(model, gguf_file=gguf_file, **{k: v for k, v in kwargs.items() if k in ("device", "dtype", "trust_remote_code")})
