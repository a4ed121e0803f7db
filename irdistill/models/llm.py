"""Two ways to run an LLM: in-process with transformers (any causal LM, GGUF files too), or an OpenAI-compatible
HTTP endpoint (vLLM, llama.cpp's server, TGI). Both speak chat messages and give next-token log-probabilities."""

from __future__ import annotations

import base64
import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request

import numpy as np

from ..errors import InputError
from . import fingerprint, locate


def _variants(label: str) -> set[str]:
    """Spellings of a label an LLM may start its answer with."""
    return {v for base in (label, label.lower(), label.capitalize(), label.upper()) for v in (base, " " + base)}


class TransformersLM:
    """A causal LM in this process. ``gguf_file`` loads a GGUF file from the ``model`` folder (dequantised)."""

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
        self.model = AutoModelForCausalLM.from_pretrained(path, torch_dtype=getattr(torch, self.dtype),
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

    def generate(self, chats: list[list[dict]], max_tokens: int = 200) -> list[str]:
        import torch

        out = []
        with torch.inference_mode():
            for prompt in self._prompts(chats):
                enc = self._batch([prompt])
                gen = self.model.generate(**enc, max_new_tokens=max_tokens, do_sample=False,
                                          pad_token_id=self.tokenizer.pad_token_id)
                out.append(self.tokenizer.decode(gen[0, enc["input_ids"].shape[1]:], skip_special_tokens=True))
        return out


class OpenAIEndpoint:
    """An OpenAI-compatible ``/v1/chat/completions`` endpoint; greedy decoding (temperature 0).

    Credentials go only where they belong: ``api_key`` (or ``user:password@`` in the URL) to this endpoint;
    ``$OPENAI_API_KEY`` only to api.openai.com. A key is never sent over plain http to a host other than this machine
    unless ``allow_insecure`` says so. The URL is kept and shown without its credentials."""

    def __init__(self, base_url: str, model: str, api_key: str | None = None, top_logprobs: int = 20, timeout: float = 300,
                 request: dict | None = None, allow_insecure: bool = False):
        url = urllib.parse.urlsplit(base_url.rstrip("/"))
        if url.scheme not in ("http", "https") or not url.hostname:
            raise InputError(f"endpoint must be an http(s) URL, not {_public(base_url)!r}")
        self.base_url = _public(base_url.rstrip("/"))
        self.model, self.top_logprobs, self.timeout = model, top_logprobs, timeout
        self.headers = {"Content-Type": "application/json"}
        if url.username:
            token = base64.b64encode(f"{urllib.parse.unquote(url.username)}:{urllib.parse.unquote(url.password or '')}"
                                     .encode()).decode()
            self.headers["Authorization"] = f"Basic {token}"
        key = api_key or (os.environ.get("OPENAI_API_KEY") if url.hostname == "api.openai.com" else None)
        if key:
            self.headers["Authorization"] = f"Bearer {key}"
        local = url.hostname in ("localhost", "127.0.0.1", "::1") or url.hostname.startswith("127.")
        if "Authorization" in self.headers and url.scheme == "http" and not local and not allow_insecure:
            raise InputError(f"will not send credentials over plain http to {url.hostname}: use https, or "
                             "allow_insecure=true")
        self.request = request or {}  # extra request fields, e.g. {"logit_bias": {"2": -100}} to keep EOS out of reach

    def describe(self) -> dict:
        return {"backend": "openai", "model": self.model, "base_url": self.base_url, "request": self.request}

    def _chat(self, messages: list[dict], **params) -> dict:
        body = json.dumps({"model": self.model, "messages": messages, "temperature": 0, **self.request, **params}).encode()
        url = self.base_url + ("/chat/completions" if self.base_url.endswith("/v1") else "/v1/chat/completions")
        req = urllib.request.Request(url, body, self.headers)  # credentials travel in the header, never the URL
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return json.load(resp)
        except (urllib.error.URLError, OSError, ValueError) as e:
            raise InputError(f"LLM endpoint {url} failed: {_public(str(e))}") from None

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

    def generate(self, chats: list[list[dict]], max_tokens: int = 200) -> list[str]:
        return [self._chat(c, max_tokens=max_tokens)["choices"][0]["message"]["content"] or "" for c in chats]


def _public(text: str) -> str:
    """``text`` with the credentials of any URL in it removed (``https://user:secret@host`` -> ``https://host``)."""
    return re.sub(r"(\w+://)[^/@\s]+@", r"\1", text)


def make_backend(model: str, endpoint: str | None = None, gguf_file: str | None = None, **kwargs):
    """``endpoint`` given: the HTTP backend; else transformers in-process."""
    if endpoint:
        return OpenAIEndpoint(endpoint, model, **{k: v for k, v in kwargs.items()
                                                  if k in ("api_key", "top_logprobs", "request", "allow_insecure")})
    return TransformersLM(model, gguf_file=gguf_file, **{k: v for k, v in kwargs.items() if k in ("device", "dtype", "trust_remote_code")})
