#!/usr/bin/env python3
"""A tiny chat model and what transformers computes with it, for Hearth's fast SFT tests (CI and
the headless browser).

Usage (repository root, peer venv from ../shared/reference/setup.sh):

    ~/.cache/hearth-peer-venv/bin/python scripts/make_tiny_chat_fixtures.py

Writes tests/fixtures/tiny-chat/, a complete HF chat-model directory:
  - tokenizer.json: byte-level BPE (GPT-2's byte alphabet, no prefix space, as SmolLM2's)
    trained with `tokenizers` on the ChatML renderings of tests/fixtures/capitals_sft.jsonl,
    512 ids, special tokens <|endoftext|> 0, <|im_start|> 1, <|im_end|> 2 (SmolLM2's numbering);
  - tokenizer_config.json: bos <|im_start|>, eos and pad <|im_end|>, and a ChatML chat template
    without a default system prompt;
  - config.json, model.safetensors: a seeded random LlamaForCausalLM (vocab 512, hidden 64,
    intermediate 128, 2 layers, 4 heads over 2 KV heads, tied embeddings, float32).
and tests/fixtures/tiny_chat.json: for the first three conversations of capitals_sft.jsonl, the
rendered text, ids and assistant mask (1 for tokens whose first character lies in an assistant
turn's content or the <|im_end|> right after it: the spans between the rendering of the
conversation up to that turn with the generation prompt and up to and including that turn, the
trailing newline excluded), transformers' causal-LM loss on the three as one right-padded batch
(pad 2, labels -100 outside the mask), the first conversation's logits, and the 12 greedy new
tokens for "What is the capital of France?" (EOS disabled so that all 12 are produced).
Deterministic; CI never runs this script.
"""
import json
import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import torch  # noqa: E402
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers  # noqa: E402
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests/fixtures/tiny-chat")
TEMPLATE = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content']"
    " + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def conversations():
    out = []
    for line in open(os.path.join(ROOT, "tests/fixtures/capitals_sft.jsonl"), encoding="utf-8"):
        row = json.loads(line)
        if "messages" in row:
            out.append(row["messages"])
        else:
            out.append([{"role": "user", "content": row["prompt"]},
                        {"role": "assistant", "content": row["response"]}])
    return out


def chatml(messages):
    return "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)


def main():
    torch.manual_seed(0)
    torch.set_num_threads(2)
    os.makedirs(OUT, exist_ok=True)
    convs = conversations()
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    trainer = trainers.BpeTrainer(vocab_size=512, special_tokens=specials, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    bpe.train_from_iterator([chatml(c) for c in convs], trainer)
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token="<|im_start|>",
                                  eos_token="<|im_end|>", pad_token="<|im_end|>",
                                  unk_token="<|endoftext|>")
    tok.chat_template = TEMPLATE
    tok.save_pretrained(OUT)
    assert [tok.convert_tokens_to_ids(t) for t in specials] == [0, 1, 2]
    config = LlamaConfig(
        vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=256,
        rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=True, hidden_act="silu",
        initializer_range=0.02, bos_token_id=1, eos_token_id=2, pad_token_id=2,
    )
    model = LlamaForCausalLM(config).eval()
    model.save_pretrained(OUT, safe_serialization=True)

    rows = []
    for messages in convs[:3]:
        text = tok.apply_chat_template(messages, tokenize=False)
        spans = []
        for i, m in enumerate(messages):
            if m["role"] == "assistant":
                start = len(tok.apply_chat_template(messages[:i], tokenize=False,
                                                    add_generation_prompt=True))
                end = len(tok.apply_chat_template(messages[:i + 1], tokenize=False).rstrip("\n"))
                spans.append((start, end))
        enc = tok(text, add_special_tokens=False, return_offsets_mapping=True)
        mask = [int(any(s <= a < e for s, e in spans)) for a, _ in enc["offset_mapping"]]
        rows.append({"messages": messages, "text": text, "ids": enc["input_ids"], "mask": mask})
    n = max(len(r["ids"]) for r in rows)
    ids = torch.full((3, n), 2)
    att = torch.zeros((3, n), dtype=torch.long)
    labels = torch.full((3, n), -100)
    for i, r in enumerate(rows):
        k = len(r["ids"])
        ids[i, :k] = torch.tensor(r["ids"])
        att[i, :k] = 1
        labels[i, :k] = torch.tensor([t if m else -100 for t, m in zip(r["ids"], r["mask"])])
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=att, labels=labels)
        prompt = tok.apply_chat_template([{"role": "user", "content": "What is the capital of France?"}],
                                         add_generation_prompt=True, return_dict=False)
        prompt = prompt["input_ids"] if hasattr(prompt, "keys") else prompt
        gen = model.generate(torch.tensor([prompt]), max_new_tokens=12, do_sample=False,
                             eos_token_id=None, pad_token_id=2)[0, len(prompt):].tolist()
    fixture = {
        "conversations": rows,
        "loss": out.loss.item(),
        "logits_0": out.logits[0, :len(rows[0]["ids"])].tolist(),
        "prompt_ids": prompt,
        "greedy_ids": gen,
        "greedy_text": tok.decode(gen),
    }
    with open(os.path.join(ROOT, "tests/fixtures/tiny_chat.json"), "w") as f:
        json.dump(fixture, f)
        f.write("\n")
    print(fixture["loss"], fixture["greedy_text"])


if __name__ == "__main__":
    main()
