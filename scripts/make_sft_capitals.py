#!/usr/bin/env python3
"""A small instruction set for Hearth's SFT tests, written for them (no external source).

Usage (repository root, any Python 3):

    python3 scripts/make_sft_capitals.py

Writes tests/fixtures/capitals_sft.jsonl: one conversation per line, 86 countries, each asked
with one of four phrasings (chosen by a seeded RNG) and answered in one rigid style, "Capital of
{country}: {city}." — a style SmolLM2-135M-Instruct does not use on its own ("The capital of
France is Paris."), so a fine-tuned model's answers visibly change. Half the lines use the
prompt/response shape, half the chat `messages` shape, some with a system turn, so both shapes
are exercised. Deterministic.
"""
import json
import os
import random

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CAPITALS = [
    ("France", "Paris"), ("Germany", "Berlin"), ("Italy", "Rome"), ("Spain", "Madrid"),
    ("Portugal", "Lisbon"), ("Japan", "Tokyo"), ("China", "Beijing"), ("India", "New Delhi"),
    ("Egypt", "Cairo"), ("Kenya", "Nairobi"), ("Canada", "Ottawa"), ("Mexico", "Mexico City"),
    ("Brazil", "Brasília"), ("Argentina", "Buenos Aires"), ("Peru", "Lima"), ("Chile", "Santiago"),
    ("Russia", "Moscow"), ("Poland", "Warsaw"), ("Norway", "Oslo"), ("Sweden", "Stockholm"),
    ("Finland", "Helsinki"), ("Denmark", "Copenhagen"), ("Ireland", "Dublin"), ("Greece", "Athens"),
    ("Turkey", "Ankara"), ("Iran", "Tehran"), ("Iraq", "Baghdad"), ("Saudi Arabia", "Riyadh"),
    ("Thailand", "Bangkok"), ("Vietnam", "Hanoi"), ("Indonesia", "Jakarta"),
    ("the Philippines", "Manila"), ("South Korea", "Seoul"), ("Australia", "Canberra"),
    ("New Zealand", "Wellington"), ("Nigeria", "Abuja"), ("Ghana", "Accra"), ("Morocco", "Rabat"),
    ("Austria", "Vienna"), ("Hungary", "Budapest"), ("the Czech Republic", "Prague"),
    ("Belgium", "Brussels"), ("the Netherlands", "Amsterdam"), ("Switzerland", "Bern"),
    ("Cuba", "Havana"), ("Colombia", "Bogotá"), ("Venezuela", "Caracas"),
    ("Ethiopia", "Addis Ababa"), ("Pakistan", "Islamabad"), ("Bangladesh", "Dhaka"),
    ("Ukraine", "Kyiv"), ("Romania", "Bucharest"), ("Bulgaria", "Sofia"), ("Serbia", "Belgrade"),
    ("Croatia", "Zagreb"), ("Iceland", "Reykjavík"), ("Nepal", "Kathmandu"),
    ("Malaysia", "Kuala Lumpur"), ("Jordan", "Amman"), ("Lebanon", "Beirut"), ("Syria", "Damascus"),
    ("Tunisia", "Tunis"), ("Algeria", "Algiers"), ("Senegal", "Dakar"), ("Uganda", "Kampala"),
    ("Zimbabwe", "Harare"), ("Zambia", "Lusaka"), ("Angola", "Luanda"), ("Uruguay", "Montevideo"),
    ("Paraguay", "Asunción"), ("Ecuador", "Quito"), ("Qatar", "Doha"), ("Oman", "Muscat"),
    ("Afghanistan", "Kabul"), ("Mongolia", "Ulaanbaatar"), ("Cambodia", "Phnom Penh"),
    ("Laos", "Vientiane"), ("Estonia", "Tallinn"), ("Latvia", "Riga"), ("Lithuania", "Vilnius"),
    ("Slovakia", "Bratislava"), ("Slovenia", "Ljubljana"), ("Kuwait", "Kuwait City"),
    ("Cyprus", "Nicosia"), ("Malta", "Valletta"), ("Luxembourg", "Luxembourg"),
]

QUESTIONS = [
    "What is the capital of {c}?",
    "Which city is the capital of {c}?",
    "Name the capital city of {c}.",
    "Tell me the capital of {c}.",
]


def main():
    rng = random.Random(7)
    lines = []
    for i, (country, city) in enumerate(CAPITALS):
        question = rng.choice(QUESTIONS).format(c=country)
        answer = f"Capital of {country}: {city}."
        if i % 2 == 0:
            lines.append({"prompt": question, "response": answer})
        else:
            messages = [{"role": "user", "content": question},
                        {"role": "assistant", "content": answer}]
            if i % 4 == 1:
                messages.insert(0, {"role": "system", "content": "You answer geography questions."})
            lines.append({"messages": messages})
    with open(os.path.join(ROOT, "tests/fixtures/capitals_sft.jsonl"), "w", encoding="utf-8") as f:
        for line in lines:
            f.write(json.dumps(line, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
