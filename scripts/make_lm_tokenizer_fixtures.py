#!/usr/bin/env python3
"""SmolLM2-135M-Instruct's tokenizer and chat template as transformers builds them from the GGUF.

Usage (repository root, peer venv from ../shared/reference/setup.sh, assets fetched):

    ~/.cache/hearth-peer-venv/bin/python scripts/make_lm_tokenizer_fixtures.py

transformers reads the tokenizer from the metadata of assets/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
(`AutoTokenizer.from_pretrained(DIR, gguf_file=FILE)`: byte-level BPE from `tokenizer.ggml.tokens`
and `tokenizer.ggml.merges`, control tokens added as special tokens) and applies the chat
template stored in the same metadata. Writes tests/fixtures/smollm2_tokenizer.json:

- `texts`: for each text, `tok.encode(text, add_special_tokens=False)` and the decode of those
  ids with and without `skip_special_tokens`.
- `chats`: for three conversations, the rendered template (`tokenize=False`), its ids, and the
  assistant mask. SmolLM2's template has no `{% generation %}` block, so
  `return_assistant_tokens_mask` cannot be used (the script records whether it is supported);
  the expected mask is computed here instead: each assistant turn's byte span runs from the end
  of the conversation before it rendered with the generation prompt to the end of the
  conversation through it rendered without one, less the whitespace the template writes after
  its `<|im_end|>`; a token is an assistant token when the start of its offset (from the fast
  tokenizer's `return_offsets_mapping`, converted from characters to UTF-8 bytes) lies in a span.

Deterministic (two runs give the same bytes). CI never runs this script.
"""
import json
import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

from transformers import AutoTokenizer  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DIR = os.path.join(ROOT, "assets/smollm2")
FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"

TEXTS = [
    "Hello, world!",
    "The quick brown fox jumps over the lazy dog.",
    "12345 and 3.14159, 1,000,000",
    "two  spaces,   three,\n\nnewlines\tand\ttabs\r\n",
    "café naïve résumé Ångström",
    "日本語のテキストと中文",
    "emoji: 😀👍🏽 🇫🇷 ❤️",
    "def f(x):\n    return x ** 2  # square\n",
    " leading space",
    "trailing space ",
    "user text with <|im_start|> and <|im_end|> inside",
    "<|endoftext|>",
    "don't won't I'm they're",
    "",
    "   ",
    "URL https://huggingface.co/HuggingFaceTB?x=1&y=2",
]

CHATS = {
    "prompt": (
        [{"role": "user", "content": "What is the capital of France?"}],
        True,
    ),
    "multi_turn": (
        [
            {"role": "system", "content": "You are a terse assistant."},
            {"role": "user", "content": "Name a prime number."},
            {"role": "assistant", "content": "7"},
            {"role": "user", "content": "And a bigger one, with emoji? 😀"},
            {"role": "assistant", "content": "101 is prime. 🎉\nIt is bigger."},
        ],
        False,
    ),
    "no_system": (
        [
            {"role": "user", "content": "Say hi."},
            {"role": "assistant", "content": "Hi there!"},
        ],
        False,
    ),
}


def render(tok, messages, add_generation_prompt):
    return tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)


def assistant_spans(tok, messages, full):
    """Byte ranges of `full` that belong to assistant turns, by rendering prefixes."""
    spans = []
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        before = render(tok, messages[:i], True)
        through = render(tok, messages[: i + 1], False)
        assert full.startswith(before) and full.startswith(through), "template is not prefix-stable"
        start = len(before.encode("utf-8"))
        end = len(through.rstrip().encode("utf-8"))
        spans.append([start, max(start, end)])
    return spans


def main():
    tok = AutoTokenizer.from_pretrained(DIR, gguf_file=FILE)
    texts = []
    for text in TEXTS:
        ids = tok.encode(text, add_special_tokens=False)
        texts.append({
            "text": text,
            "ids": ids,
            "decoded": tok.decode(ids, skip_special_tokens=False),
            "decoded_skip_special": tok.decode(ids, skip_special_tokens=True),
        })
    chats = {}
    for name, (messages, add_generation_prompt) in CHATS.items():
        rendered = render(tok, messages, add_generation_prompt)
        ids = tok.apply_chat_template(messages, add_generation_prompt=add_generation_prompt)
        ids = ids["input_ids"] if hasattr(ids, "keys") else ids
        # The template writes the special tokens itself; encoding the rendered text gives the same ids.
        assert ids == tok.encode(rendered, add_special_tokens=False)
        try:
            out = tok.apply_chat_template(messages, return_dict=True, return_assistant_tokens_mask=True)
            hf_mask = out["assistant_masks"]
            hf_mask = hf_mask if any(hf_mask) else None
        except Exception:  # noqa: BLE001 - recorded as unsupported
            hf_mask = None
        enc = tok(rendered, add_special_tokens=False, return_offsets_mapping=True)
        spans = assistant_spans(tok, messages, rendered)
        char_to_byte = [len(rendered[:k].encode("utf-8")) for k in range(len(rendered) + 1)]
        mask = [
            any(s <= char_to_byte[start] < e for s, e in spans)
            for start, _ in enc["offset_mapping"]
        ]
        chats[name] = {
            "messages": messages,
            "add_generation_prompt": add_generation_prompt,
            "rendered": rendered,
            "ids": ids,
            "assistant_spans": spans,
            "assistant_mask": mask,
            "hf_assistant_mask": hf_mask,
        }
    out = {
        "vocab_size": len(tok),
        "bos_token_id": tok.bos_token_id,
        "eos_token_id": tok.eos_token_id,
        "pad_token_id": tok.pad_token_id,
        "chat_template": tok.chat_template,
        "texts": texts,
        "chats": chats,
    }
    with open(os.path.join(ROOT, "tests/fixtures/smollm2_tokenizer.json"), "w") as f:
        json.dump(out, f, ensure_ascii=False, indent=1)
        f.write("\n")
    for name, chat in chats.items():
        print(name, chat["assistant_spans"], sum(chat["assistant_mask"]), chat["hf_assistant_mask"] is not None)


if __name__ == "__main__":
    main()
