"""Shop feeds (Google Merchant Center TSV and XML, Shopify product CSV) read into
normalised product documents: exact documents, exact error lines, format sniffing and
hostile files."""

from __future__ import annotations

import csv
import io

import pytest

from catalogue.feeds import FeedRow, feed_format, read_feed
from catalogue.styles import CatalogueFormatError

IMG = "https://img.example/"
ID_RULE = "an id is 1 to 128 letters, digits and . _ : -, starting with a letter or digit"
GMC_COLUMNS = ["id", "item_group_id", "title", "description", "link", "image_link",
               "additional_image_link", "price", "sale_price", "availability", "brand",
               "color", "size", "gender", "age_group", "product_type",
               "google_product_category", "gtin", "mpn", "condition", "material", "pattern"]
SHOPIFY_COLUMNS = [
    "Handle", "Title", "Body (HTML)", "Vendor", "Product Category", "Type", "Tags",
    "Published", "Option1 Name", "Option1 Value", "Option2 Name", "Option2 Value",
    "Option3 Name", "Option3 Value", "Variant SKU", "Variant Grams",
    "Variant Inventory Tracker", "Variant Inventory Qty", "Variant Inventory Policy",
    "Variant Fulfillment Service", "Variant Price", "Variant Compare At Price",
    "Variant Requires Shipping", "Variant Taxable", "Variant Barcode", "Image Src",
    "Image Position", "Image Alt Text", "Gift Card", "Google Shopping / Gender",
    "Variant Image", "Status"]


def write(path, text, bom=False):
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode())
    return path


def tsv(rows, columns=GMC_COLUMNS):
    """A Merchant Center text feed; a row given as a str is written as it is."""
    lines = ["\t".join(columns)]
    lines += [r if isinstance(r, str) else "\t".join(r.get(c, "") for c in columns)
              for r in rows]
    return "\n".join(lines) + "\n"


def shopify_csv(rows):
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(SHOPIFY_COLUMNS)
    for r in rows:
        if isinstance(r, str):
            out.write(r + "\n")
        else:
            writer.writerow([r.get(c, "") for c in SHOPIFY_COLUMNS])
    return out.getvalue()


def read(path, **kwargs):
    return list(read_feed(path, **kwargs))


def bad(line, reason, metadata=None):
    return FeedRow(line, metadata, f"line {line}: {reason}")


DRESS = {"item_group_id": "DR-1", "title": "Silk  midi dress",
         "description": "<p>Silk &amp; <b>linen</b></p><ul><li>Midi</li></ul>",
         "link": "https://shop.example/dr-1", "price": "89.90 EUR", "brand": "Maison",
         "gender": "female", "age_group": "adult", "condition": "new", "material": "silk",
         "pattern": "solid", "product_type": "Apparel > Women > Dresses",
         "google_product_category": "Apparel & Accessories > Clothing > Dresses"}
GMC_ROWS = [
    {**DRESS, "id": "DR-1-RED-S", "image_link": IMG + "red.jpg",
     "additional_image_link": f"{IMG}back.jpg,{IMG}side.jpg", "sale_price": "69.90 EUR",
     "availability": "in stock", "color": "Red", "size": "S", "gtin": "4006381333931",
     "mpn": "MD-1"},
    {"id": "TS-9", "title": "Basic tee", "description": "Soft cotton.",
     "image_link": IMG + "tee.jpg", "price": "19.00 EUR", "availability": "out_of_stock"},
    {**DRESS, "id": "DR-1-BLK-M", "image_link": IMG + "black.jpg",
     "additional_image_link": IMG + "back.jpg", "availability": "preorder",
     "color": "Black", "size": "M", "pattern": "striped"},
    {**DRESS, "id": "DR-1-RED-M", "price": "89,90 EUR", "availability": "in_stock"},
    {"id": "TS-10", "title": "Tee", "price": "10.00 EUR", "availability": "maybe"},
    {"title": "No id", "price": "10.00 EUR", "availability": "in_stock"},
    "X\tY",
    {"id": "bad id!", "title": "Bad", "price": "1.00 EUR", "availability": "in_stock"},
    {**DRESS, "id": "DR-1-BLU-L", "image_link": IMG + "blue.jpg", "color": "Blue/White",
     "size": "L", "availability": "backorder"},
]
DRESS_DOC = {
    "id": "DR-1", "title": "Silk midi dress", "description": "Silk & linen Midi",
    "link": "https://shop.example/dr-1", "brand": "Maison", "category": "Dresses",
    "gender": "female", "pattern": "solid", "currency": "EUR", "tags": ["Apparel", "Women"],
    "attributes": {"age_group": "adult", "condition": "new", "material": "silk",
                   "google_product_category": "Apparel & Accessories > Clothing > Dresses",
                   "product_type": "Apparel > Women > Dresses"},
    "images": [{"url": IMG + n} for n in ("red.jpg", "back.jpg", "side.jpg", "black.jpg",
                                          "blue.jpg")],
    "variants": [
        {"sku": "DR-1-RED-S", "colour": "Red", "size": "S", "price": 69.9,
         "compare_at_price": 89.9, "availability": "in_stock", "image": 0,
         "gtin": "4006381333931", "mpn": "MD-1"},
        {"sku": "DR-1-BLK-M", "colour": "Black", "size": "M", "price": 89.9,
         "availability": "preorder", "image": 3, "attributes": {"pattern": "striped"}},
        {"sku": "DR-1-BLU-L", "colour": "Blue/White", "size": "L", "price": 89.9,
         "availability": "backorder", "image": 4},
    ],
}


def test_merchant_tsv_groups_variants_and_reports_bad_rows(tmp_path):
    path = write(tmp_path / "feed.txt", tsv(GMC_ROWS))
    assert feed_format(path) == "merchant-tsv"
    assert read(path) == [
        FeedRow(2, DRESS_DOC),
        FeedRow(3, {"id": "TS-9", "title": "Basic tee", "description": "Soft cotton.",
                    "currency": "EUR", "images": [{"url": IMG + "tee.jpg"}],
                    "variants": [{"sku": "TS-9", "price": 19.0,
                                  "availability": "out_of_stock", "image": 0}]}),
        bad(5, "bad price '89,90 EUR': want '<number> <currency>', e.g. '49.90 EUR'"),
        bad(6, "unknown availability 'maybe': want in_stock, out_of_stock, preorder or "
               "backorder", {"id": "TS-10"}),
        bad(7, "no id"),
        bad(8, "2 cells where the header has 22"),
        bad(9, f"bad id 'bad id!': {ID_RULE}", {"id": "bad id!"}),
    ]


def test_merchant_tsv_group_with_no_good_item_is_one_error(tmp_path):
    rows = [{"id": "A-1", "item_group_id": "A", "title": "Scarf", "price": "12 EUR"},
            {"id": "A-2", "item_group_id": "A", "price": "12.00 EUR",
             "availability": "in_stock"},
            {"id": "A-1", "item_group_id": "A", "title": "Scarf", "price": "12.00 USD",
             "availability": "in_stock"}]
    assert read(write(tmp_path / "f.tsv", tsv(rows))) == [
        bad(2, "no availability; line 3: no title; line 4: duplicate id 'A-1' (first on "
               "line 2)", {"id": "A"})]


def test_merchant_tsv_header_spellings_and_currency_mix(tmp_path):
    columns = ["g:ID", "Item Group ID", "Title", "Price", "Availability", "Image Link"]
    rows = [{"g:ID": "B-1", "Item Group ID": "B", "Title": "Belt", "Price": "30.00 eur",
             "Availability": "In Stock", "Image Link": IMG + "belt.jpg"},
            {"g:ID": "B-2", "Item Group ID": "B", "Title": "Belt", "Price": "35.00 USD",
             "Availability": "in_stock"}]
    assert read(write(tmp_path / "f.tsv", tsv(rows, columns))) == [
        FeedRow(2, {"id": "B", "title": "Belt", "currency": "EUR",
                    "images": [{"url": IMG + "belt.jpg"}],
                    "variants": [{"sku": "B-1", "price": 30.0, "availability": "in_stock",
                                  "image": 0}]}),
        bad(3, "price in USD where the product's is in EUR")]


RSS = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:g="http://base.google.com/ns/1.0">
<channel><title>Shop</title><link>https://shop.example</link>
<item>
  <g:id>JK-1-S</g:id><g:item_group_id>JK-1</g:item_group_id>
  <title>Denim jacket</title><link>https://shop.example/jk-1</link>
  <description><![CDATA[<p>Rigid <em>denim</em>&nbsp;jacket</p>]]></description>
  <g:image_link>https://img.example/jk-blue.jpg</g:image_link>
  <g:additional_image_link>https://img.example/jk-back.jpg</g:additional_image_link>
  <g:additional_image_link>https://img.example/jk-a,b.jpg</g:additional_image_link>
  <g:price>120.00 EUR</g:price><g:sale_price>99.00 EUR</g:sale_price>
  <g:availability>in_stock</g:availability><g:brand>Blau</g:brand>
  <g:color>Blue</g:color><g:size>S</g:size><g:product_type>Jackets</g:product_type>
  <g:shipping><g:country>DE</g:country><g:price>4.95 EUR</g:price></g:shipping>
</item>
<item>
  <g:id>JK-2</g:id><g:title>Cheap jacket</g:title><g:price>cheap</g:price>
  <g:availability>in_stock</g:availability>
</item>
<item>
  <g:id>JK-1-M</g:id><g:item_group_id>JK-1</g:item_group_id>
  <g:title>Denim jacket (M)</g:title><g:image_link>https://img.example/jk-black.jpg</g:image_link>
  <g:additional_image_link>https://img.example/jk-back.jpg</g:additional_image_link>
  <g:price>120.00 EUR</g:price><g:availability>out of stock</g:availability>
  <g:color>Black</g:color><g:size>M</g:size><g:gtin>0012345678905</g:gtin>
</item>
</channel></rss>
"""


def test_merchant_rss_items_and_their_lines(tmp_path):
    path = write(tmp_path / "feed.xml", RSS)
    assert feed_format(path) == "merchant-xml"
    assert read(path) == [
        FeedRow(4, {
            "id": "JK-1", "title": "Denim jacket", "description": "Rigid denim jacket",
            "link": "https://shop.example/jk-1", "brand": "Blau", "category": "Jackets",
            "currency": "EUR", "attributes": {"product_type": "Jackets"},
            "images": [{"url": IMG + n} for n in ("jk-blue.jpg", "jk-back.jpg",
                                                  "jk-a,b.jpg", "jk-black.jpg")],
            "variants": [
                {"sku": "JK-1-S", "colour": "Blue", "size": "S", "price": 99.0,
                 "compare_at_price": 120.0, "availability": "in_stock", "image": 0},
                {"sku": "JK-1-M", "colour": "Black", "size": "M", "price": 120.0,
                 "availability": "out_of_stock", "image": 3, "gtin": "0012345678905"}]}),
        bad(16, "bad price 'cheap': want '<number> <currency>', e.g. '49.90 EUR'",
            {"id": "JK-2"}),
    ]


def test_merchant_atom_feed(tmp_path):
    atom = """<?xml version="1.0"?>
<feed xmlns="http://www.w3.org/2005/Atom" xmlns:g="http://base.google.com/ns/1.0">
  <title>Shop</title><link rel="self" href="https://shop.example/feed"/>
  <entry>
    <title>Linen shirt</title><link href="https://shop.example/ls-1"/>
    <summary>Light &lt;b&gt;linen&lt;/b&gt;</summary>
    <g:id>LS-1</g:id><g:price>45 GBP</g:price><g:availability>backorder</g:availability>
  </entry>
</feed>"""
    path = write(tmp_path / "feed.atom", atom, bom=True)
    assert feed_format(path) == "merchant-xml"
    assert read(path) == [FeedRow(4, {
        "id": "LS-1", "title": "Linen shirt", "description": "Light linen",
        "link": "https://shop.example/ls-1", "currency": "GBP",
        "variants": [{"sku": "LS-1", "price": 45.0, "availability": "backorder"}]})]


LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE rss [<!ENTITY a "ha"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>
<rss version="2.0" xmlns:g="http://base.google.com/ns/1.0"><channel><item>
<g:id>X</g:id><g:title>&c;</g:title></item></channel></rss>"""
XXE = """<?xml version="1.0"?>
<!DOCTYPE rss [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<rss version="2.0" xmlns:g="http://base.google.com/ns/1.0"><channel><item>
<g:id>X</g:id><g:title>&x;</g:title></item></channel></rss>"""


@pytest.mark.parametrize("text", [LAUGHS, XXE, RSS.replace("</item>\n<item>", "<item>", 1)],
                         ids=["billion-laughs", "external-entity", "not-well-formed"])
def test_hostile_or_broken_xml_is_the_files_error(tmp_path, text):
    path = write(tmp_path / "feed.xml", text)
    with pytest.raises(CatalogueFormatError) as caught:
        read(path, shown="uploads/feed.xml")
    assert str(caught.value).startswith("uploads/feed.xml: ")
    assert str(tmp_path) not in str(caught.value)


WRAP = {"Handle": "wrap-dress", "Option1 Value": "Green", "Option3 Value": "Viscose",
        "Variant Inventory Tracker": "shopify", "Variant Price": "79.00"}
SHOPIFY_ROWS = [
    {**WRAP, "Title": "Wrap dress", "Body (HTML)": "<p>Viscose wrap dress.</p><script>x()"
     "</script>", "Vendor": "Atelier", "Product Category": "Apparel & Accessories > "
     "Clothing > Dresses", "Type": "Dresses", "Tags": "summer, midi,summer",
     "Published": "TRUE", "Option1 Name": "Color", "Option2 Name": "Size",
     "Option2 Value": "S", "Option3 Name": "Material", "Variant SKU": "WD-G-S",
     "Variant Inventory Qty": "3", "Variant Inventory Policy": "deny",
     "Variant Compare At Price": "99.00", "Variant Barcode": "0001",
     "Image Src": IMG + "wd-2.jpg", "Image Position": "2",
     "Google Shopping / Gender": "Female", "Status": "active"},
    {**WRAP, "Option2 Value": "M", "Variant SKU": "WD-G-M", "Variant Inventory Qty": "0",
     "Variant Inventory Policy": "continue", "Variant Compare At Price": "79.00",
     "Variant Image": IMG + "wd-1.jpg"},
    {**WRAP, "Option2 Value": "L", "Variant SKU": "WD-G-L", "Variant Inventory Qty": "-2",
     "Variant Inventory Policy": "deny", "Variant Image": IMG + "wd-green-l.jpg"},
    {"Handle": "wrap-dress", "Image Src": IMG + "wd-1.jpg", "Image Position": "1"},
    {**WRAP, "Option2 Value": "XL", "Variant SKU": "WD-G-XL", "Variant Price": "79,00"},
    {**WRAP, "Option1 Value": "Red", "Option2 Value": "S", "Variant SKU": "WD-R-S",
     "Variant Inventory Tracker": "", "Variant Inventory Qty": "0"},
    {"Handle": "basic-tee", "Title": "Basic tee", "Option1 Name": "Title",
     "Option1 Value": "Default Title", "Variant SKU": "TEE-1", "Variant Price": "15.00",
     "Variant Inventory Tracker": "shopify", "Image Src": IMG + "tee.jpg"},
    {"Handle": "draft-coat", "Title": "Coat", "Option1 Name": "Size", "Option1 Value": "M",
     "Variant Price": "200.00", "Status": "draft"},
    {"Handle": "draft-coat", "Option1 Value": "L", "Variant Price": "oops"},
    {"Handle": "ghost", "Option1 Value": "Red", "Variant Price": "10.00"},
    "x,y",
    {"Handle": "Bad Handle!", "Title": "Hat", "Option1 Value": "Default Title",
     "Variant Price": "5.00"},
    {"Handle": "hidden-tee", "Title": "Tee", "Published": "FALSE", "Variant Price": "9.00"},
    {"Handle": "socks", "Title": "Socks", "Variant Price": "4.00",
     "Variant Inventory Tracker": "shopify", "Variant Inventory Qty": "lots"},
    {"Handle": "", "Title": "Nameless", "Variant Price": "4.00"},
]
VIS = {"material": "Viscose"}


def test_shopify_export_to_documents_and_errors(tmp_path):
    path = write(tmp_path / "products_export.csv", shopify_csv(SHOPIFY_ROWS))
    assert feed_format(path) == "shopify-csv"
    assert read(path) == [
        FeedRow(2, {
            "id": "wrap-dress", "title": "Wrap dress", "description": "Viscose wrap dress.",
            "brand": "Atelier", "category": "Dresses", "gender": "Female",
            "tags": ["summer", "midi"],
            "attributes": {"product_category": "Apparel & Accessories > Clothing > Dresses"},
            "images": [{"url": IMG + n} for n in ("wd-1.jpg", "wd-2.jpg", "wd-green-l.jpg")],
            "variants": [
                {"sku": "WD-G-S", "colour": "Green", "size": "S", "price": 79.0,
                 "compare_at_price": 99.0, "availability": "in_stock", "gtin": "0001",
                 "attributes": VIS},
                {"sku": "WD-G-M", "colour": "Green", "size": "M", "price": 79.0,
                 "availability": "backorder", "image": 0, "attributes": VIS},
                {"sku": "WD-G-L", "colour": "Green", "size": "L", "price": 79.0,
                 "availability": "out_of_stock", "image": 2, "attributes": VIS},
                {"sku": "WD-R-S", "colour": "Red", "size": "S", "price": 79.0,
                 "availability": "in_stock", "attributes": VIS}]}),
        bad(6, "bad Variant Price '79,00': want a number such as 49.90"),
        FeedRow(8, {"id": "basic-tee", "title": "Basic tee",
                    "images": [{"url": IMG + "tee.jpg"}],
                    "variants": [{"sku": "TEE-1", "price": 15.0,
                                  "availability": "in_stock"}]}),
        bad(11, "no product row for Handle 'ghost': none of its rows has a Title",
            {"id": "ghost"}),
        bad(12, f"2 cells where the header has {len(SHOPIFY_COLUMNS)}"),
        bad(13, f"bad id 'Bad Handle!': {ID_RULE}", {"id": "Bad Handle!"}),
        bad(15, "bad Variant Inventory Qty 'lots': want a whole number", {"id": "socks"}),
        bad(16, "no Handle"),
    ]


def test_shopify_variant_rows_before_the_product_row(tmp_path):
    rows = [{"Handle": "cap", "Option1 Value": "Navy", "Variant Price": "20",
             "Variant Image": IMG + "cap-navy.jpg"},
            {"Handle": "cap", "Title": "Cap", "Option1 Name": "Colour",
             "Option1 Value": "Sand", "Variant Price": "20", "Status": "sold out"},
            {"Handle": "cup", "Title": "Cup", "Type": "", "Option1 Name": "Fit",
             "Option1 Value": "Slim", "Variant Price": "8", "Gift Card": "TRUE",
             "Product Category": "Home > Mugs", "Variant Inventory Policy": "maybe"},
            {"Handle": "cup", "Option1 Value": "Wide", "Variant Price": "8"}]
    assert read(write(tmp_path / "p.csv", shopify_csv(rows))) == [
        bad(2, "unknown Status 'sold out': want active, draft or archived", {"id": "cap"}),
        FeedRow(4, {"id": "cup", "title": "Cup", "category": "Mugs",
                    "attributes": {"product_category": "Home > Mugs", "gift_card": True},
                    "variants": [{"price": 8.0, "availability": "in_stock",
                                  "attributes": {"fit": "Wide"}}]}),
        bad(4, "unknown Variant Inventory Policy 'maybe': want deny or continue"),
    ]


def test_format_is_sniffed_from_the_content(tmp_path):
    cases = {
        "a.csv": ("id\ttitle\tprice\n", "merchant-tsv"),
        "b.txt": ('"Handle","Title","Variant Price"\n', "shopify-csv"),
        "c.txt": (RSS, "merchant-xml"),
        "d.xml": ('<rss version="2.0"><channel/></rss>', None),  # no g: namespace
        "e.xml": ('<html xmlns:g="http://base.google.com/ns/1.0"/>', None),
        "styles.csv": ("id,gender,articleType\n", None),
        "f.tsv": ("", None),
    }
    for name, (text, expected) in cases.items():
        assert feed_format(write(tmp_path / name, text)) == expected, name
    with pytest.raises(CatalogueFormatError, match=r"^shop/styles\.csv is not a product"):
        read(tmp_path / "styles.csv", shown="shop/styles.csv")


def test_byte_order_mark_and_overlong_fields(tmp_path):
    long = "x" * 150
    rows = [{"id": "C-1", "title": "Coat", "price": "1.00 EUR", "availability": "in_stock"},
            {"id": "C-2", "title": "Coat", "price": "1.00 EUR", "availability": "in_stock",
             "description": long},
            {"id": "C-3", "title": "Cap", "price": "2.00 EUR", "availability": "in_stock"}]
    path = write(tmp_path / "f.tsv", tsv(rows, ["id", "title", "price", "availability",
                                                "description"]), bom=True)
    assert feed_format(path) == "merchant-tsv"
    found = read(path, max_field_chars=100)
    assert [(r.line, r.metadata and r.metadata["id"], r.error) for r in found] == [
        (2, "C-1", None),
        (3, None, "line 3: longer than 100 characters (VITRINE_IMPORT_MAX_FIELD_CHARS)"),
        (4, "C-3", None)]
    xml = RSS.replace("<g:brand>Blau</g:brand>", f"<g:brand>{long}</g:brand>")
    found = read(write(tmp_path / "f.xml", xml), max_field_chars=100)
    assert [(r.line, r.error) for r in found] == [
        (4, "line 4: a field is longer than 100 characters (VITRINE_IMPORT_MAX_FIELD_CHARS)"),
        (16, "line 16: bad price 'cheap': want '<number> <currency>', e.g. '49.90 EUR'"),
        (20, None)]


def test_description_is_plain_text_and_bounded(tmp_path):
    body = "<div>Lined&nbsp;&amp; <i>warm</i><br>long coat</div><style>p{}</style>" + "ab " * 3000
    rows = [{"Handle": "coat", "Title": "Coat", "Body (HTML)": body, "Variant Price": "1"}]
    (doc,) = read(write(tmp_path / "p.csv", shopify_csv(rows)))
    assert doc.metadata["description"].startswith("Lined & warm long coat ab ab")
    assert len(doc.metadata["description"]) == 4999  # 5000, less the space at the cut
