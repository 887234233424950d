from fedineighbour.neighbourhood.text import render_plain_text


async def resolver(handle: str):
    if handle == "bob@b.example":
        return "https://b.example/users/bob", "https://b.example/@bob"
    return None


async def test_paragraphs_links_mentions_hashtags():
    text = "Hi @bob@b.example <b>!\n\nSee https://x.example/a?b=1 #Drill #drill @nobody@z.example"
    out = await render_plain_text(text, resolver, lambda t: f"https://t.example/tags/{t}")
    assert out.html.count("<p>") == 2
    assert "&lt;b&gt;" in out.html
    assert 'href="https://b.example/@bob"' in out.html
    assert out.mentions == [{"href": "https://b.example/users/bob", "name": "@bob@b.example"}]
    assert out.hashtags == ["drill"]
    assert 'href="https://x.example/a?b=1"' in out.html
    assert "@nobody@z.example" in out.html
