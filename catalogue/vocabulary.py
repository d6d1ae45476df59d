"""The catalogue's closed vocabularies: article types, colours, patterns, genders, in
English and German, with the German grammar needed to put them into a phrase.

The demo catalogue is drawn from these words, captions teach a model these words, and
zero-shot tagging falls back to them; kept in one place they cannot drift apart (a
colour the demo draws but captions cannot name in German would silently train nothing).
Values are the Kaggle "Fashion Product Images" spellings ("Tshirts", "Navy Blue").
It depends on nothing of the project, so the domain and the demo can both read it.
"""

from __future__ import annotations

# ------------------------------------------------------------------- article types

# The core article types, with their Kaggle (masterCategory, subCategory): the demo
# catalogue draws exactly these and GERMAN names every one of them.
ARTICLE_TYPES: dict[str, tuple[str, str]] = {
    "Tshirts": ("Apparel", "Topwear"),
    "Shirts": ("Apparel", "Topwear"),
    "Dresses": ("Apparel", "Dress"),
    "Skirts": ("Apparel", "Bottomwear"),
    "Trousers": ("Apparel", "Bottomwear"),
    "Jeans": ("Apparel", "Bottomwear"),
    "Shorts": ("Apparel", "Bottomwear"),
    "Jackets": ("Apparel", "Topwear"),
    "Coats": ("Apparel", "Topwear"),
    "Casual Shoes": ("Footwear", "Shoes"),
    "Sports Shoes": ("Footwear", "Shoes"),
    "Sandals": ("Footwear", "Sandal"),
    "Boots": ("Footwear", "Shoes"),
    "Handbags": ("Accessories", "Bags"),
    "Caps": ("Accessories", "Headwear"),
    "Scarves": ("Accessories", "Scarves"),
    "Socks": ("Accessories", "Socks"),
}

# The core and the most common other Kaggle article types: what zero-shot tagging
# chooses among while a catalogue holds too few categories of its own.
COMMON_ARTICLE_TYPES: tuple[str, ...] = (
    "Tshirts", "Shirts", "Tops", "Dresses", "Skirts", "Trousers", "Jeans", "Shorts",
    "Jackets", "Coats", "Sweaters", "Casual Shoes", "Sports Shoes", "Sandals", "Heels",
    "Boots", "Handbags", "Backpacks", "Caps", "Scarves", "Socks", "Belts", "Watches",
    "Sunglasses",
)  # fmt: skip

# Kaggle article types (plural, CamelCase) -> what people call one of them; the
# first name is the canonical one used in queries and zero-shot prompts.
ARTICLE_NAMES: dict[str, tuple[str, ...]] = {
    "Tshirts": ("t-shirt", "tee", "tshirt"),
    "Shirts": ("shirt",),
    "Tops": ("top",),
    "Dresses": ("dress",),
    "Skirts": ("skirt",),
    "Trousers": ("trousers", "pants"),
    "Jeans": ("jeans", "denim jeans"),
    "Shorts": ("shorts",),
    "Track Pants": ("track pants",),
    "Leggings": ("leggings",),
    "Jackets": ("jacket",),
    "Coats": ("coat",),
    "Sweaters": ("sweater", "jumper"),
    "Sweatshirts": ("sweatshirt",),
    "Kurtas": ("kurta",),
    "Casual Shoes": ("shoes", "casual shoes"),
    "Formal Shoes": ("formal shoes",),
    "Sports Shoes": ("sneakers", "sports shoes", "trainers"),
    "Sandals": ("sandals",),
    "Flip Flops": ("flip flops",),
    "Heels": ("heels",),
    "Flats": ("flats",),
    "Boots": ("boots",),
    "Handbags": ("bag", "handbag"),
    "Backpacks": ("backpack",),
    "Clutches": ("clutch",),
    "Wallets": ("wallet",),
    "Belts": ("belt",),
    "Caps": ("cap", "baseball cap"),
    "Scarves": ("scarf",),
    "Socks": ("socks",),
    "Ties": ("tie",),
    "Watches": ("watch",),
    "Sunglasses": ("sunglasses",),
    "Earrings": ("earrings",),
    "Necklace and Chains": ("necklace",),
    "Briefs": ("briefs",),
}
# English names that take no "a": the noun is a plural or a pair.
PLURAL_NAMES = frozenset({
    "trousers", "pants", "jeans", "denim jeans", "shorts", "track pants", "leggings", "shoes",
    "casual shoes", "formal shoes", "sneakers", "sports shoes", "trainers", "sandals",
    "flip flops", "heels", "flats", "boots", "socks", "sunglasses", "earrings", "briefs",
})  # fmt: skip

# ------------------------------------------------------------ colours and patterns

# Chosen to be far apart, so that a name is never ambiguous on a picture.
COLOURS: tuple[str, ...] = (
    "Black", "White", "Red", "Blue", "Navy Blue", "Green", "Yellow", "Pink", "Purple",
    "Brown", "Grey", "Orange", "Beige",
)  # fmt: skip
PATTERNS: tuple[str, ...] = ("plain", "striped", "dotted", "checked", "floral")
# A pattern's motif, as in "a dress with flowers": (English plural, German dative plural).
PATTERN_MOTIF: dict[str, tuple[str, str]] = {
    "striped": ("stripes", "Streifen"),
    "dotted": ("dots", "Punkten"),
    "checked": ("checks", "Karos"),
    "floral": ("flowers", "Blumen"),
}

# ------------------------------------------------------------------------ genders

GENDERS: tuple[str, ...] = ("Men", "Women", "Boys", "Girls", "Unisex")
GENDER_EN = {"Men": "men", "Women": "women", "Boys": "boys", "Girls": "girls",
             "Unisex": "men and women"}  # fmt: skip
GENDER_POSSESSIVE = {"Men": "men's", "Women": "women's", "Boys": "boys'", "Girls": "girls'",
                     "Unisex": "unisex"}  # fmt: skip
GENDER_DE = {"Men": "Herren", "Women": "Damen", "Boys": "Jungen", "Girls": "Mädchen",
             "Unisex": "Damen und Herren"}  # fmt: skip

# ------------------------------------------------------------------------- German

NOUN_DE: dict[str, str] = {  # article type -> the German noun, as a shopper types it
    "Tshirts": "T-Shirt",
    "Shirts": "Hemd",
    "Dresses": "Kleid",
    "Skirts": "Rock",
    "Trousers": "Hose",
    "Jeans": "Jeans",
    "Shorts": "Shorts",
    "Jackets": "Jacke",
    "Coats": "Mantel",
    "Casual Shoes": "Schuhe",
    "Sports Shoes": "Turnschuhe",
    "Sandals": "Sandalen",
    "Boots": "Stiefel",
    "Handbags": "Tasche",
    "Caps": "Hut",
    "Scarves": "Schal",
    "Socks": "Socken",
}
COLOUR_DE: dict[str, str] = {  # colour -> the German adjective stem
    "Black": "schwarz",
    "White": "weiß",
    "Red": "rot",
    "Blue": "blau",
    "Navy Blue": "marineblau",
    "Green": "grün",
    "Yellow": "gelb",
    "Pink": "rosa",
    "Purple": "lila",
    "Brown": "braun",
    "Grey": "grau",
    "Orange": "orange",
    "Beige": "beige",
}
PATTERN_DE: dict[str, str] = {  # pattern -> the German adjective stem
    "plain": "einfarbig",
    "striped": "gestreift",
    "dotted": "gepunktet",
    "checked": "kariert",
    "floral": "geblümt",
}
# Every German word of the vocabulary by its English value; the value sets do not overlap.
GERMAN: dict[str, str] = {**NOUN_DE, **COLOUR_DE, **PATTERN_DE}

# German noun -> grammatical gender; "pl" for nouns used in the plural. It picks the
# article and the adjective ending.
GENUS_DE = {
    "T-Shirt": "n", "Hemd": "n", "Kleid": "n", "Rock": "m", "Hose": "f", "Jeans": "f",
    "Shorts": "pl", "Jacke": "f", "Mantel": "m", "Schuhe": "pl", "Turnschuhe": "pl",
    "Sandalen": "pl", "Stiefel": "pl", "Tasche": "f", "Hut": "m", "Schal": "m", "Socken": "pl",
}  # fmt: skip
INDECLINABLE_DE = frozenset({"rosa", "lila", "orange", "beige"})
ENDING_DE = {"m": "er", "f": "e", "n": "es", "pl": "e"}  # nominative, after "ein" or no article
ARTICLE_DE = {"m": "ein", "f": "eine", "n": "ein", "pl": ""}


def adjective_de(stem: str, genus: str) -> str:
    """A German adjective declined for a noun of the genus: ("rot", "n") -> "rotes"."""
    return stem if stem in INDECLINABLE_DE else stem + ENDING_DE[genus]
