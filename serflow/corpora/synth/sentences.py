"""Text pools for the synthetic corpus: emotional sentences per class and a shared ambiguous pool.

The mix is what makes the demo corpus useful: a sentence from its class's own pool gives the label
away to a text model, one from the shared pool does not, so text alone cannot solve the task and
fusion with audio has something to add. Sentences are stored without final punctuation; endings
and an optional lead-in word are added at generation time. Vocabulary is plain English (later stages
look words up in the CMU dictionary and GloVe); a digit or a colon appears only in a few sentences,
on purpose, because transcript parsers must cope with them.
"""

from __future__ import annotations

import numpy as np

CLASS_SENTENCES: dict[str, tuple[str, ...]] = {
    "ang": (
        "I told you to stop doing that",
        "Get out of my room right now",
        "You never listen to a single word I say",
        "This is completely unacceptable",
        "How dare you talk to me like that",
        "I am sick and tired of your excuses",
        "Do not touch my things ever again",
        "You lied to me again",
        "That is the last time you make a fool of me",
        "I want my money back today",
        "Stop yelling at me and answer the question",
        "You ruined everything I worked for",
        "I cannot stand this stupid noise anymore",
        "Who gave you the right to decide for me",
        "You broke your promise and you know it",
        "Shut the door and leave me alone",
        "I am so angry I could scream",
        "Nobody treats me like this",
        "You had one job and you failed",
        "Give me back my keys right now",
        "This is the worst service I have ever seen",
        "Why do you keep blaming me for your mistakes",
        "I demand to speak to the manager",
        "You have no idea how furious I am",
        "Keep your hands off my car",
        "I will not let you get away with this",
        "That was a rotten thing to do",
        "Stop wasting my time",
        "You insulted my family in front of everyone",
        "I hate it when you ignore me",
        "Enough is enough",
        "You are a liar and a cheat",
        "Do you think I am an idiot",
        "I paid for this and it is broken again",
        "Get your feet off my table",
        "You took the credit for my work",
        "I swear I will never forgive you",
        "Back off and mind your own business",
        "You are driving me out of my mind",
        "This whole thing is a disgrace",
    ),
    "hap": (
        "I got the job",
        "This is the best day of my life",
        "We are getting married",
        "I love this song so much",
        "You made me so happy today",
        "We won the game last night",
        "I can hardly wait for the party",
        "What a wonderful surprise",
        "I passed the exam with top marks",
        "Thank you so much for the lovely gift",
        "The baby is healthy and beautiful",
        "We are going to the beach this summer",
        "I feel great this morning",
        "That was the funniest joke I have heard all year",
        "My sister is coming home for the holidays",
        "Everything is working out perfectly",
        "I am so proud of you",
        "We finally bought our own house",
        "The sun is shining and I feel wonderful",
        "Let us celebrate tonight",
        "I got a raise at work",
        "You look amazing in that dress",
        "This cake is absolutely delicious",
        "I am thrilled to see you again",
        "Our team made it to the finals",
        "I just love spending time with you",
        "We had such a fantastic trip",
        "My parents said yes",
        "It is a beautiful day for a walk",
        "I could dance all night",
        "That is fantastic news",
        "I cannot stop smiling",
        "You are the best friend anyone could have",
        "We did it together",
        "The kids loved their presents",
        "I am having so much fun",
        "This is exactly what I wanted",
        "At last we are on vacation",
        "I feel like the luckiest person alive",
        "What a lovely evening this has been",
    ),
    "neu": (
        "The meeting starts at nine tomorrow",
        "I need to pick up some milk on the way home",
        "The train leaves from platform four",
        "Please put the files on my desk",
        "We should check the weather before we go",
        "The store closes at six",
        "I will send you the report this afternoon",
        "Can you pass me the salt",
        "The library is on the second floor",
        "My car is parked across the street",
        "I usually take the bus to work",
        "The package should arrive on Monday",
        "Let me write down your phone number",
        "The kitchen needs a new light bulb",
        "We have a meeting with the client on Friday",
        "Turn left at the next corner",
        "I read the instructions twice",
        "The printer is out of paper",
        "She works in the accounting department",
        "The form asks for your address and date of birth",
        "Dinner will be ready in twenty minutes",
        "I moved the chairs into the other room",
        "The plumber is coming on Tuesday",
        "You can find the forms at the front desk",
        "The flight takes about three hours",
        "I put the keys in the top drawer",
        "We need two more copies of this page",
        "The bank opens at ten in the morning",
        "My brother lives in a small town up north",
        "The schedule is posted on the wall",
        "I am going to the post office",
        "The water bill came today",
        "Please sign here and here",
        "He ordered a coffee and a sandwich",
        "The road is closed for repairs",
        "Let me check my calendar",
        "The room has two windows and a desk",
        "I will call you when I get there",
        "We usually eat dinner around seven",
        "The next bus comes in 10 minutes",
    ),
    "sad": (
        "I miss her so much",
        "My grandfather passed away last night",
        "Nobody came to my birthday",
        "I feel so lonely without you",
        "We lost the house",
        "I failed again",
        "He left and he is never coming back",
        "I cannot stop crying",
        "Everything feels so empty now",
        "The dog died this morning",
        "I wish things could go back to the way they were",
        "I have nobody to talk to",
        "She did not even say goodbye",
        "I lost my job today",
        "It hurts so much",
        "I tried my best and it was not enough",
        "There is no point in trying anymore",
        "I feel like such a failure",
        "We had to say goodbye to our old cat",
        "I never got to tell him I loved him",
        "My heart is broken",
        "The doctor said there is nothing more they can do",
        "I am so tired of being alone",
        "Our old friends have all moved away",
        "I keep thinking about what I lost",
        "The rain will not stop and neither will this sadness",
        "I will never see my mother again",
        "Nothing I do seems to matter",
        "I used to be so happy here",
        "They forgot about me",
        "I am sorry I let you down",
        "The house is so quiet since she left",
        "I do not know how to go on",
        "All my plans fell apart",
        "I wanted this so badly",
        "He does not love me anymore",
        "I spent the whole day in bed",
        "Our little shop had to close",
        "I feel so hopeless",
        "Please do not leave me",
    ),
}

AMBIGUOUS_SENTENCES: tuple[str, ...] = (
    "I did not expect that",
    "Are you serious",
    "So this is what you wanted",
    "Tell me what happened",
    "I was there the whole time",
    "We need to talk",
    "It was him all along",
    "You should see this",
    "That is what she said to me",
    "I just got the letter",
    "Look at this",
    "Do you know what this means",
    "It happened again",
    "I heard the news this morning",
    "He called me last night",
    "What are we going to do now",
    "I have been thinking about it all day",
    "You know what I mean",
    "It is over",
    "They told me everything",
    "Come here for a second",
    "I read the whole thing",
    "That is not what I expected",
    "We are leaving tomorrow",
    "I saw her at the station",
    "It is all different now",
    "Why would he say that",
    "I know exactly what you did",
    "Let me tell you something",
    "It has been a long week",
    "You did that on purpose",
    "She said she would be here",
    "This changes everything",
    "I need to sit down",
    "I have to go",
    "Who told you that",
    "I will be there in a minute",
    "He finally answered the phone",
    "It is really happening",
    "You were right about him",
    "I opened the box and looked inside",
    "Is that really true",
    "I cannot believe it",
    "We talked about it yesterday",
    "Just listen to me",
    "I have never seen anything like it",
    "It took us three hours to get here",
    "You have to hear this",
    "Did you see his face",
    "Well here we are",
    "That is the whole story",
    "It is exactly the same as before",
    "I did not think you would come",
    "Mom called about the weekend",
    "This is it",
    "I kept the letter",
    "They are coming over tonight",
    "You really did it",
    "Rule number one: we stay together",
    "He came back at 5:30 in the morning",
)

# Short turns with no label (the "XX" lines of an IEMOCAP transcript).
FILLERS: tuple[str, ...] = ("Hmm.", "Yeah.", "Okay.", "Right.", "Sure.", "Oh.", "Well.", "No.")

# Lead-in words are shared by all classes so they carry no label information.
LEAD_INS: tuple[str, ...] = ("Oh", "Well", "Look", "Listen", "Honestly", "So", "Okay")
LEAD_IN_PROBABILITY = 0.2

# Final punctuation: class-flavoured for emotional sentences (it also shapes espeak-ng's intonation),
# one shared distribution for the ambiguous pool so that its text stays uninformative.
_ENDINGS: dict[str, tuple[tuple[str, ...], tuple[float, ...]]] = {
    "ang": ((".", "!", "?"), (0.40, 0.50, 0.10)),
    "hap": ((".", "!", "?"), (0.40, 0.50, 0.10)),
    "neu": ((".", "?"), (0.85, 0.15)),
    "sad": ((".", "...", "?"), (0.70, 0.20, 0.10)),
    "ambiguous": ((".", "!", "?", "..."), (0.55, 0.15, 0.20, 0.10)),
}

CLASS_TEXT_PROBABILITY = 0.6


_KEEP_CAPITAL = frozenset({"I", "Mom"})
_QUESTION_WORDS = frozenset({"Who", "What", "Why", "How", "Are", "Is", "Do", "Did", "Can"})


def _decorate(sentence: str, endings_key: str, rng: np.random.Generator) -> str:
    """Add an optional lead-in word and a final punctuation mark drawn for ``endings_key``."""
    marks, weights = _ENDINGS[endings_key]
    ending = marks[int(rng.choice(len(marks), p=weights))]
    first = sentence.split(" ", 1)[0]
    if first in _QUESTION_WORDS and not sentence.startswith(("What a ", "How dare ")):
        ending = "?"  # the same for every class, so it says nothing about the label
    if rng.random() < LEAD_IN_PROBABILITY:
        lead = LEAD_INS[int(rng.integers(len(LEAD_INS)))]
        body = sentence if first in _KEEP_CAPITAL else sentence[0].lower() + sentence[1:]
        sentence = f"{lead}, {body}"
    return sentence + ending


def choose_text(label_class: str | None, rng: np.random.Generator) -> tuple[str, bool]:
    """Pick the spoken text for one utterance; return ``(text, from_class_pool)``.

    ``label_class`` is one of the four classes, or None for labels outside them: those always take
    the ambiguous pool, so that no text cue exists for a class the 4-class task does not contain.
    """
    if label_class in CLASS_SENTENCES and rng.random() < CLASS_TEXT_PROBABILITY:
        pool = CLASS_SENTENCES[label_class]
        return _decorate(pool[int(rng.integers(len(pool)))], label_class, rng), True
    sentence = AMBIGUOUS_SENTENCES[int(rng.integers(len(AMBIGUOUS_SENTENCES)))]
    return _decorate(sentence, "ambiguous", rng), False


def choose_filler(rng: np.random.Generator) -> str:
    """A short unlabelled backchannel turn."""
    return FILLERS[int(rng.integers(len(FILLERS)))]
