"""The store's query kinds, on both backends: keywords (BM25 over the engine's IDF), fused
hybrid, diversity (MMR) and recommendations, with the same answers from each."""

import dataclasses

import numpy as np
import pytest

from catalogue.attributes import DEFAULT_SCHEMA
from catalogue.keywords import Keywords
from catalogue.store.base import Query, StoredPoint, point_id
from catalogue.store.edge import EdgeStore
from catalogue.store.filters import Filter
from catalogue.store.server import ServerStore

DIM = 8
TITLES = ["Red summer dress", "Blue denim jeans", "Levi's 501 jeans", "Black leather boots",
          "White cotton shirt", "Red wool scarf", "Green silk dress", "Grey cotton hoodie"]


@pytest.fixture(params=["edge", "server"])
def store(request, tmp_path):
    s = (EdgeStore(tmp_path / "edge", DIM) if request.param == "edge"
         else ServerStore.connect(":memory:", "products", DIM))
    yield s
    s.close()


def unit(v):
    v = np.asarray(v, np.float32)
    return v / np.linalg.norm(v)


def fill(store, keywords, vectors=None):
    rng = np.random.default_rng(0)
    points = []
    for i, title in enumerate(TITLES):
        payload = {"product_id": f"p{i}", "title": title, "moderation_status": "visible",
                   "variants": [{"sku": f"SKU-{1000 + i}"}]}
        vector = vectors[i] if vectors is not None else unit(rng.normal(size=DIM))
        points.append(StoredPoint(point_id(f"p{i}"), payload, np.atleast_2d(vector),
                                  keywords.document(payload)))
    store.upsert(points)
    return points


def ids(hits):
    return [h.payload["product_id"] for h in hits]


def test_keywords_find_words_and_weigh_rare_ones(store):
    keywords = Keywords(DEFAULT_SCHEMA)
    fill(store, keywords)
    jeans = ids(store.search(Query(sparse=keywords.query("jeans")), limit=5))
    assert sorted(jeans) == ["p1", "p2"]
    levis = ids(store.search(Query(sparse=keywords.query("levi's jeans")), limit=5))
    assert levis[0] == "p2"  # the rarer word decides between the two jeans
    assert ids(store.search(Query(sparse=keywords.query("SKU-1003")), limit=3))[0] == "p3"
    dresses = store.search(Query(sparse=keywords.query("dresses")), Filter(
        match={"product_id": "p6"}), limit=5)
    assert ids(dresses) == ["p6"]  # stemmed (dresses: dress), and filtered


def test_a_hyphenated_word_finds_its_joined_spelling_and_not_its_parts(store):
    keywords = Keywords(DEFAULT_SCHEMA)
    products = {"shirt": "Checked Shirt", "tshirt": "Checked Tshirt", "tee": "Checked T-Shirt"}
    store.upsert([StoredPoint(point_id(pid), payload := {"product_id": pid, "title": title,
                                                         "description": f"A {title.lower()}.",
                                                         "moderation_status": "visible"},
                              np.ones((1, DIM)) / DIM ** 0.5, keywords.document(payload))
                  for pid, title in products.items()])
    for query in ("a checked t-shirt", "checked tshirt"):
        found = ids(store.search(Query(sparse=keywords.query(query)), limit=3))
        assert set(found[:2]) == {"tshirt", "tee"}, query  # the shirt only shares "checked"
        assert found[2] == "shirt", query


def test_german_stemming(store):
    keywords = Keywords(DEFAULT_SCHEMA, "german")
    payload = {"product_id": "k", "title": "Rotes Kleid mit Punkten",
               "moderation_status": "visible"}
    store.upsert([StoredPoint(point_id("k"), payload, np.ones((1, DIM)) / DIM ** 0.5,
                              keywords.document(payload))])
    assert ids(store.search(Query(sparse=keywords.query("Kleider")), limit=3)) == ["k"]
    assert ids(store.search(Query(sparse=Keywords(DEFAULT_SCHEMA).query("Kleider")),
                            limit=3)) == []  # the English stemmer leaves "kleider" as it is


def test_a_word_finds_its_synonyms_and_a_bad_synonym_is_refused(store):
    keywords = Keywords(DEFAULT_SCHEMA, synonyms="sneakers trainers; flowers blossom")
    products = {"floral": "Floral dress", "flowers": "Dress with flowers",
                "plain": "Plain dress", "trainers": "White trainers"}
    store.upsert([StoredPoint(point_id(pid), payload := {"product_id": pid, "title": title,
                                                         "moderation_status": "visible"},
                              np.ones((1, DIM)) / DIM ** 0.5, keywords.document(payload))
                  for pid, title in products.items()])

    def found(query: str, words: Keywords = keywords) -> set[str]:
        return set(ids(store.search(Query(sparse=words.query(query)), limit=5)))

    # A pattern's words are one group in both languages; stemming still applies.
    for query in ("with flowers", "floral", "a flower", "geblümt", "mit Blumen", "blossom"):
        assert found(query) == {"floral", "flowers"}, query
    assert found("sneakers") == {"trainers"}  # the shop's own group
    # Stored as one word: other synonyms are other rules, so a start rewrites the vectors.
    assert len({Keywords(DEFAULT_SCHEMA, synonyms=s).scheme for s in ("", "a1 b1", "a1 c1")}) \
        == 3
    for bad in ("the shoes", "sneakers trainers; tee-shirt t-shirt; a"):  # stop words
        with pytest.raises(ValueError, match="not one word"):
            Keywords(DEFAULT_SCHEMA, synonyms=bad)


def test_hybrid_fuses_both_sides_and_the_cutoff_holds_on_the_photo_side(store):
    keywords = Keywords(DEFAULT_SCHEMA)
    vectors = [unit(np.eye(DIM)[i % DIM] + 0.1) for i in range(len(TITLES))]
    fill(store, keywords, vectors)
    photo_of_p0 = vectors[0]
    query = Query(dense=photo_of_p0, sparse=keywords.query("jeans"), keyword_weight=0.5)
    hybrid = ids(store.search(query, limit=3))
    assert {"p0", "p1", "p2"} == set(hybrid)  # the photo's best, and both jeans
    leaning = ids(store.search(Query(dense=photo_of_p0, sparse=keywords.query("jeans"),
                                     keyword_weight=0.9), limit=1))
    assert leaning[0] in ("p1", "p2")
    cut = ids(store.search(Query(dense=photo_of_p0, sparse=keywords.query("jeans red")),
                           limit=8, score_threshold=0.99))
    assert cut == ["p0"]  # only p0's photo clears 0.99: no keyword hit passes without it
    words_only = ids(store.search(Query(dense=photo_of_p0, sparse=keywords.query("red"),
                                        keyword_weight=1.0), limit=8, score_threshold=0.5))
    assert set(words_only) <= {"p0", "p5"} and "p5" not in words_only  # p5 is red, far off
    dbsf = ids(store.search(Query(dense=photo_of_p0, sparse=keywords.query("jeans"),
                                  fusion="dbsf"), limit=3))
    assert set(dbsf) == {"p0", "p1", "p2"}


@pytest.mark.parametrize("fusion", ["rrf", "dbsf"])
def test_the_words_first_head_in_one_query_is_what_queries_over_ids_find(store, fusion):
    """The words-first head in one engine query (`Query.head`): "fused" orders just the
    products the words find, as fusing over exactly those would; "looks" takes those and
    the photo side's best that have the words, in the photo side's order. Products only
    the photo side finds are left out of both."""
    keywords = Keywords(DEFAULT_SCHEMA)
    points = fill(store, keywords)
    words = keywords.query("levi's jeans scarf")  # p2 both words, then p5, then p1: no ties
    found = [h.id for h in store.top(Query(sparse=words), limit=200)]
    assert found == [points[2].id, points[5].id, points[1].id]
    # p1's photo: its looks' best two are p1 and p3, and p1 has a word; p3's: none has
    for photo, added in (points[1].vector[0], [points[1].id]), (points[3].vector[0], []):
        query = Query(dense=photo, sparse=words, fusion=fusion, candidates=2)
        fused = store.top(dataclasses.replace(query, candidates=3), Filter(ids=found), 3)
        head = store.top(dataclasses.replace(query, candidates=3, head="fused"), limit=3)
        assert [h.id for h in head] == [h.id for h in fused]
        assert [h.score for h in head] == pytest.approx([h.score for h in fused])
        # "looks", with 2 candidates a side (a head of at most 2, as Search.worded asks):
        # the words' best two, and whichever of the looks' best two have a word; ordered
        # by the photo alone.
        alike = [h.id for h in store.top(Query(photo), limit=2)]
        narrowed = [h.id for h in store.top(Query(sparse=words), Filter(ids=alike), 2)]
        wanted = store.top(Query(photo), Filter(ids=found[:2] + narrowed), 2)
        looks = store.top(dataclasses.replace(query, head="looks"), limit=2)
        assert [h.id for h in looks] == [h.id for h in wanted]
        assert narrowed == added and set(added) <= {h.id for h in looks}
        assert [h.score for h in looks] == pytest.approx([h.score for h in wanted])


def test_diversity_leaves_out_near_duplicates(store):
    keywords = Keywords(DEFAULT_SCHEMA)
    base = unit(np.arange(1, DIM + 1))
    rng = np.random.default_rng(1)
    vectors = [unit(base + 0.001 * rng.normal(size=DIM)) for _ in range(5)]  # one T-shirt
    vectors += [unit(base + 0.6 * rng.normal(size=DIM)) for _ in range(3)]  # three others
    fill(store, keywords, vectors)
    plain = ids(store.search(Query(dense=base), limit=4))
    diverse = ids(store.search(Query(dense=base, diversity=0.7), limit=4))
    duplicates = {f"p{i}" for i in range(5)}
    assert len(set(plain) & duplicates) == 4
    assert len(set(diverse) & duplicates) <= 2
    assert [h.position for h in store.search(Query(dense=base, diversity=0.7), limit=2,
                                             offset=2)] == [2, 3]


def test_recommend_near_the_liked_away_from_the_disliked(store):
    keywords = Keywords(DEFAULT_SCHEMA)
    a, b = unit(np.eye(DIM)[0]), unit(np.eye(DIM)[1])
    vectors = [unit(a + 0.2 * np.eye(DIM)[2 + i % 3]) for i in range(4)] + \
        [unit(b + 0.2 * np.eye(DIM)[2 + i % 3]) for i in range(4)]
    fill(store, keywords, vectors)
    liked = ids(store.search(Query(positives=[vectors[0]]), limit=4))
    assert set(liked) == {"p0", "p1", "p2", "p3"}
    mixed = Query(positives=[unit(a + b)], negatives=[vectors[5]])
    top = ids(store.search(mixed, limit=4))
    assert set(top) == {"p0", "p1", "p2", "p3"}  # b's side is pushed away


def test_words_of_several_products_are_replaced_in_one_write(store):
    keywords = Keywords(DEFAULT_SCHEMA)
    points = fill(store, keywords)
    velvet = keywords.document({"title": "velvet"})
    store.set_texts({points[0].id: velvet, points[4].id: velvet})
    assert sorted(ids(store.search(Query(sparse=keywords.query("velvet")), limit=5))) == \
        ["p0", "p4"]
    assert ids(store.search(Query(sparse=keywords.query("jeans")), limit=5)) != []
    assert "p0" not in ids(store.search(Query(sparse=keywords.query("summer")), limit=5))
    [kept] = store.retrieve([points[0].id], with_vectors=True)
    assert kept.payload["title"] == "Red summer dress"
    np.testing.assert_allclose(kept.vector, points[0].vector, atol=1e-6)
    store.set_texts({})  # nothing to write
