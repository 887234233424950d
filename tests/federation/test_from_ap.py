"""from_ap: real payloads from many servers (tests/fixtures, see PROVENANCE.md) -> our view, or a reason."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from fedineighbour.federation.convert.ap_json import date_of
from fedineighbour.federation.convert.from_ap import (
    ACTIVITY_TYPES,
    ACTOR_TYPES,
    OBJECT_TYPES,
    ParsedActivity,
    ParsedActor,
    ParsedObject,
    Unsupported,
    as_list,
    describe,
    id_of,
    parse_activity,
    parse_actor,
    parse_any,
    parse_object,
    sanitize_html,
)

FIXTURES = Path(__file__).parents[1] / "fixtures"  # tests/fixtures
PAYLOADS = sorted(p.relative_to(FIXTURES).as_posix() for p in FIXTURES.rglob("*.json")
                  if p.relative_to(FIXTURES).parts[0] != "signatures")
PUBLIC = "https://www.w3.org/ns/activitystreams#Public"
REL = 'rel="nofollow noopener noreferrer"'


def load(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def dig(d: dict, dotted: str):
    for key in dotted.split("."):
        d = d[key]
    return d


# --- every payload: understood, or refused with a one-line reason -----------------------------------


def test_fixtures_were_copied_with_provenance():
    assert len(PAYLOADS) >= 120
    provenance = (FIXTURES / "PROVENANCE.md").read_text(encoding="utf-8")
    missing = [name for name in PAYLOADS if f"| {name} |" not in provenance]
    assert missing == []


@pytest.mark.parametrize("name", PAYLOADS)
def test_every_payload_is_understood_or_refused(name):
    doc = load(name)
    try:
        summary = describe(doc)
    except Unsupported as exc:
        reason = str(exc)
        assert reason and "\n" not in reason and len(reason) <= 200
        with pytest.raises(Unsupported):
            parse_any(doc)
        return
    assert summary["kind"] in {"actor", "object", "activity", "webfinger", "nodeinfo", "nodeinfo_links"}
    assert isinstance(summary["type"], str) and summary["type"]
    json.dumps(summary)  # serialisable as it is
    if summary["kind"] in {"actor", "object", "activity"}:
        parsed = parse_any(doc)
        assert parsed.ap_id == summary["id"]
        assert parsed.type == summary["type"]
    for field in ("content", "summary"):
        text = summary.get(field) or ""
        assert "<script" not in text and "javascript:" not in text.lower() and "<img" not in text


EXPECTED = {
    "mastodon/activity/create_note.json": {
        "kind": "activity", "type": "Create", "actor": "https://mastodon.madrid/users/felix",
        "object_type": "Note",
        "object.attributed_to": "https://mastodon.madrid/users/felix",
        "object.in_reply_to": "https://mamot.fr/users/retiolus/statuses/107224244380204526",
        "object.mentions": ["https://mamot.fr/users/retiolus"], "object.published": "2021-11-05T11:46:50Z"},
    "mastodon/activity/follow_group.json": {
        "kind": "activity", "type": "Follow", "object_id": "https://ds9.lemmy.ml/c/testcom", "object": None},
    "mastodon/activity/undo_follow.json": {
        "type": "Undo", "object_type": "Follow", "object.actor": "https://masto.asonix.dog/users/asonix",
        "object.object_id": "https://ds9.lemmy.ml/c/testcom"},
    "mastodon/activity/accept_follow.json": {
        "type": "Accept", "object_type": "Follow", "object.actor": "http://mobilizon.test/@thomas1"},
    "mastodon/activity/reject_follow.json": {"type": "Reject", "object_type": "Follow"},
    "mastodon/activity/undo_announce.json": {"type": "Undo", "object_type": "Announce"},
    "mastodon/activity/undo_block.json": {"type": "Undo", "object_type": "Block"},
    "mastodon/activity/announce.json": {"type": "Announce", "object": None},
    "mastodon/activity/update_person.json": {
        "type": "Update", "object_type": "Person", "object.id": "https://framapiaf.org/users/framasoft",
        "object.has_public_key": True},
    "mastodon/activity/delete_note_with_ld_signature.json": {
        "type": "Delete", "object_type": "Tombstone",
        "object_id": "https://mastodon.madrid/users/felix/statuses/107773559874184870"},
    "mastodon/activity/flag.json": {
        "type": "Flag", "object_id": "https://example.com/users/1", "to": ["https://example.com/users/1"],
        "content": "Please take a look at this user and their posts"},
    "mbin/activity/flag.json": {"type": "Flag", "content": "dikjhgasdpas dsaü"},
    "mastodon/actor/person_full.json": {
        "kind": "actor", "type": "Person", "handle": "mastodon@masto.qa.urbanwildlife.biz",
        "shared_inbox": "https://masto.qa.urbanwildlife.biz/inbox", "has_public_key": True,
        "key_id": "https://masto.qa.urbanwildlife.biz/users/mastodon#main-key",
        "featured": "https://masto.qa.urbanwildlife.biz/users/mastodon/collections/featured"},
    "gotosocial/object/note_interaction_policy.json": {
        "kind": "object", "type": "Note", "summary": "introduction post", "sensitive": True},
    "gotosocial/actor/person.json": {"key_id": "http://localhost:8080/users/the_mighty_zork/main-key"},
    "pleroma/object/note.json": {"type": "Note", "content": "<p>Have what?</p>"},
    "misskey/object/note.json": {"type": "Note", "content": "<p><span>meow</span></p>"},
    "misskey/object/question_no_end_time.json": {"type": "Question", "end_time": None},
    "lemmy/object/page_image_and_link.json": {
        "type": "Page", "name": "Post with image and link", "audience": "https://enterprise.lemmy.ml/c/tenforward"},
    "lemmy/activity/announce_create_page.json": {
        "type": "Announce", "actor": "http://enterprise.lemmy.ml/c/main", "object_type": "Create",
        "object.object_type": "Page", "object.object.name": "post 4"},
    "lemmy/activity/remove_note.json": {"type": "Delete", "content": "bad comment"},
    "lemmy/activity/block_user.json": {"type": "Block", "target": "http://enterprise.lemmy.ml/c/main"},
    "lemmy/object/tombstone.json": {"type": "Tombstone", "id": "https://lemmy.ml/comment/110273"},
    "mobilizon/object/event_with_place.json": {
        "type": "Event", "hashtags": ["Dance", "Caledonian", "Lesson"], "start_time": "2022-12-11T19:00:00Z",
        "end_time": "2022-12-11T21:00:00Z", "attributed_to": "https://rendezvous.nomagic.uk/@devon_caledonian_society",
        "location": {"name": "The Kenn Centre", "latitude": 50.66881615, "longitude": -3.537739788359949}},
    "mobilizon/activity/accept_join.json": {"type": "Accept", "object_type": "Join"},
    "peertube/object/video.json": {
        "type": "Video", "attributed_to": "https://tilvids.com/accounts/thelinuxexperiment",
        "url": "https://tilvids.com/videos/watch/e7946124-7b72-4ad7-9d22-844a84bb2de1"},
    "pixelfed/activity/create_note_image_place.json": {
        "object.location": {"name": "Wrocław", "latitude": 51.1, "longitude": 17.03333},
        "object.hashtags": ["streetphotography", "colorphotography"]},
    "kroeg/activity/create_note_arrayless_hashtag.json": {
        "object.hashtags": ["test"], "object.attributed_to": "https://puckipedia.com/",
        "object.content": "<p>test</p>"},
    "lotide/activity/create_page.json": {"to": ["https://c.tide.tk/communities/1"], "cc": [PUBLIC]},
    "bridgy/object/note_from_bluesky.json": {
        "url": "https://bsky.brid.gy/r/https://bsky.app/profile/did:plc:25pjv3klpvtyfupgodearyop/post/3mhfimrpn5s2b"},
    "gancio/webfinger/gancio.json": {
        "kind": "webfinger", "subject": "acct:gancio@demo.gancio.org",
        "actor": "https://demo.gancio.org/federation/u/gancio"},
    "mastodon/nodeinfo/nodeinfo20.json": {"kind": "nodeinfo", "software": "mastodon", "version": "4.1.0"},
    "mobilizon/nodeinfo/well_known_both_versions.json": {
        "kind": "nodeinfo_links", "best": "https://mobilizon.fr/.well-known/nodeinfo/2.1"},
}

REFUSED = {
    "fedify/collection/ordered_collection_page.json": "collections are not handled: OrderedCollectionPage",
    "lemmy/collection/group_outbox.json": "collections are not handled: OrderedCollection",
    "gotosocial/object/like_authorization.json": "unsupported type: LikeAuthorization",
    "lemmy/activity/lock_page.json": "unsupported type: Lock",
    "fedify/object/cryptographic_key.json": "a key document (CryptographicKey)",
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_expected_outcome(name):
    summary = describe(load(name))
    for dotted, expected in EXPECTED[name].items():
        assert dig(summary, dotted) == expected, dotted


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_expected_refusal(name):
    with pytest.raises(Unsupported) as info:
        describe(load(name))
    assert str(info.value).startswith(REFUSED[name])


# --- closer looks at representative payloads ----------------------------------------------------------


def test_mastodon_create_note_is_sanitised_and_addressed():
    activity = parse_activity(load("mastodon/activity/create_note.json"))
    note = activity.object
    assert isinstance(note, ParsedObject) and note.ap_id == activity.object_id
    assert "thinkpad" in note.content and REL in note.content
    assert note.published == datetime(2021, 11, 5, 11, 46, 50, tzinfo=UTC)
    assert note.to == ("https://mastodon.madrid/users/felix/followers",)
    assert PUBLIC in note.cc and note.sensitive is False


def test_content_map_only_is_used():
    doc = load("mastodon/activity/create_note_contentmap.json")["object"]
    assert "content" not in doc and doc["contentMap"]["en"]
    content = parse_object(doc).content
    assert content.startswith('<p><span class="h-card"><a href="http://localtesting.pleroma.lol/users/lain"')
    assert REL in content
    doc["contentMap"] = {"fr": "<p>bonjour</p>", "en": "<p>hello</p>"}
    assert parse_object(doc).content == "<p>bonjour</p>"


def test_misskey_content_fallback_when_content_is_missing():
    doc = load("misskey/object/note.json")
    del doc["content"]
    assert parse_object(doc).content == "<p>meow</p>"


def test_undo_follow_embeds_the_follow():
    undo = parse_activity(load("lemmy/activity/undo_follow.json"))
    follow = undo.object
    assert isinstance(follow, ParsedActivity) and follow.type == "Follow"
    assert follow.actor == undo.actor and follow.object_id == "http://enterprise.lemmy.ml/c/main"


def test_delete_actor_and_move_are_understood():
    actor = "https://social.example/users/alice"
    delete = parse_activity({"id": actor + "#delete", "type": "Delete", "actor": actor, "object": actor,
                             "to": [PUBLIC]})
    assert (delete.type, delete.object_id, delete.object) == ("Delete", actor, None)
    move = parse_activity({"id": actor + "#moves/1", "type": "Move", "actor": actor, "object": actor,
                           "target": {"id": "https://new.example/users/alice", "type": "Person"}})
    assert (move.type, move.object_id, move.target) == ("Move", actor, "https://new.example/users/alice")


def test_activity_without_id_gets_a_stable_synthetic_id():
    doc = load("gotosocial/activity/delete_public.json")
    first, again = parse_activity(doc), parse_activity(copy.deepcopy(doc))
    assert first.ap_id.startswith("urn:sha256:") and first.ap_id == again.ap_id
    assert first.object_id == "http://localhost:8080/users/admin/statuses/01F8MH75CBF9JFX4ZAD54N0W0R"
    assert first.to == (PUBLIC,)


def test_update_person_carries_the_actor_and_its_key():
    update = parse_activity(load("mastodon/activity/update_person.json"))
    assert isinstance(update.object, ParsedActor)
    assert update.object.public_key_pem.startswith("-----BEGIN PUBLIC KEY-----")


def test_mastodon_actor_fields():
    actor = parse_actor(load("mastodon/actor/person_full.json"))
    assert (actor.type, actor.username, actor.name) == ("Person", "mastodon", "Mastodon")
    assert actor.inbox == "https://masto.qa.urbanwildlife.biz/users/mastodon/inbox"
    assert actor.url == "https://masto.qa.urbanwildlife.biz/@mastodon"
    assert actor.icon_url.endswith("2cf61ff96e94cb1d.png")
    assert actor.manually_approves_followers is False and actor.discoverable is False
    assert actor.moved_to is None and actor.also_known_as == []


def test_actor_keys_from_elsewhere_are_ignored():
    doc = load("mastodon/actor/person_full.json")
    doc["publicKey"]["owner"] = "https://evil.example/users/mallory"
    assert parse_actor(doc).key_id is None
    doc = load("mastodon/actor/person_full.json")
    doc["publicKey"]["id"] = "https://evil.example/users/mallory#main-key"
    assert parse_actor(doc).public_key_pem is None


def test_bridgy_actor_keeps_non_http_aliases_and_url():
    actor = parse_actor(load("bridgy/actor/person_bluesky.json"))
    assert actor.also_known_as == ["at://did:plc:3ljmtyyjqcjee2kpewgsifvb"]
    assert actor.url == "https://bsky.app/profile/snarfed.bsky.social" and actor.shared_inbox is None


def test_lemmy_page_attachments():
    page = parse_object(load("lemmy/object/page_image_and_link.json"))
    assert [(a["type"], a["url"]) for a in page.attachments] == [
        ("Image", "https://enterprise.lemmy.ml/pictrs/image/eOtYb9iEiB.png"),
        ("Link", "https://example.com/some-article")]


def test_mastodon_media_attachment_keeps_alt_text_and_blurhash():
    note = parse_object(load("mastodon/object/note_with_media_focalpoint.json"))
    (media,) = note.attachments
    assert media["media_type"] == "image/jpeg" and media["name"].startswith("The KDE dragons")
    assert media["blurhash"] and media["url"].startswith("https://")


def test_peertube_markdown_becomes_html():
    video = parse_object(load("peertube/object/video.json"))
    assert video.content.startswith("<p>Head to <a href=\"https://squarespace.com/thelinuxexperiment\"")
    assert "<br>" in video.content and video.name.startswith("Mesa, Wayland")


def test_note_proposal_fep_0837():
    doc = {
        "id": "https://town.example/offers/1", "type": ["Note", "Proposal"],
        "attributedTo": "https://town.example/users/alice", "name": "Ladder to lend",
        "content": "<p>Ladder <script>x</script>to lend</p>", "purpose": "offer",
        "publishes": {"type": "Intent", "action": "vf:transfer", "resourceConformsTo": "https://www.wikidata.org/wiki/Q187",
                      "resourceQuantity": {"hasUnit": "one", "hasNumericalValue": 1}},
        "reciprocal": {"type": "Intent", "action": "transfer",
                       "resourceQuantity": {"hasUnit": "one", "hasNumericalValue": "0"}},
        "unitBased": False, "endTime": "2030-01-01T00:00:00+01:00",
        "location": {"type": "Place", "name": "Centre", "latitude": 48.1, "longitude": "-1.6"},
        "tag": [{"type": "Hashtag", "name": "#lend"}],
    }
    note = parse_object(doc)
    assert (note.type, note.types, note.is_proposal) == ("Note", ("Note", "Proposal"), True)
    assert note.content == "<p>Ladder to lend</p>" and note.hashtags == ("lend",)
    assert note.proposal["purpose"] == "offer" and note.proposal["source"] == "fep-0837"
    assert note.proposal["publishes"]["action"] == "transfer"
    assert note.proposal["publishes"]["resourceQuantity"] == {"hasUnit": "one", "hasNumericalValue": "1"}
    assert note.proposal["end_time"] == "2029-12-31T23:00:00Z"
    assert note.location == {"name": "Centre", "latitude": 48.1, "longitude": -1.6}
    assert note.end_time == datetime(2029, 12, 31, 23, 0, tzinfo=UTC)
    assert describe(doc)["is_proposal"] is True


def test_flohmarkt_item_is_a_proposal():
    doc = {
        "id": "https://floh.example/users/bob/items/abc", "type": "Note",
        "flohmarkt:data": {"price": "25", "name": "Radio", "description": "Works", "original_id": "abc",
                           "coordinates": {"lat": 45.4215, "lng": -75.6972}},
        "attributedTo": "https://floh.example/users/bob", "content": "Radio <br> Works", "to": [PUBLIC],
    }
    note = parse_object(doc)
    assert note.type == "Note" and note.is_proposal is True
    assert note.proposal["source"] == "flohmarkt" and note.proposal["price"] == "25"
    assert note.proposal["reciprocal"]["resourceQuantity"]["hasNumericalValue"] == "25"
    assert note.location == {"name": None, "latitude": 45.4215, "longitude": -75.6972}


def test_plain_notes_are_not_proposals():
    note = parse_object(load("pleroma/object/note.json"))
    assert note.is_proposal is False and note.proposal is None


def test_attributed_to_list_prefers_the_person():
    doc = {"id": "https://v.example/videos/1", "type": "Video", "attributedTo": [
        {"type": "Group", "id": "https://v.example/video-channels/c"},
        {"type": "Person", "id": "https://v.example/accounts/a"}]}
    assert parse_object(doc).attributed_to == "https://v.example/accounts/a"


# --- refusals and hostile or broken input -------------------------------------------------------------


@pytest.mark.parametrize(("doc", "reason"), [
    ([], "not a JSON object"),
    ("https://x.example/a", "not a JSON object"),
    (None, "not a JSON object"),
    ({}, "missing type"),
    ({"type": "Note"}, "missing id"),
    ({"type": "Travel", "id": "https://x.example/t"}, "unsupported type: Travel"),
    ({"type": ["Travel", "Arrive"], "id": "https://x.example/t"}, "unsupported type: Travel, Arrive"),
    ({"type": "Create", "id": "https://x.example/c"}, "missing actor"),
    ({"type": "Person", "id": "acct:bob@x.example"}, "actor id is not an http(s) URL"),
    ({"subject": "acct:a@b", "links": []}, "not ActivityPub"),
])
def test_parse_any_refusals(doc, reason):
    with pytest.raises(Unsupported) as info:
        parse_any(doc)
    assert str(info.value).startswith(reason)


def test_parse_functions_refuse_the_wrong_kind():
    with pytest.raises(Unsupported, match="not an actor: type Note"):
        parse_actor(load("pleroma/object/note.json"))
    with pytest.raises(Unsupported, match="not an activity: type Person"):
        parse_activity(load("pleroma/actor/person.json"))
    with pytest.raises(Unsupported, match="not an object: type Create"):
        parse_object(load("pleroma/activity/create_note.json"))


@pytest.mark.parametrize("value", [5, "x", None, [], {}, [None], {"a": [[[]]]}, True, 1.5, {"id": 3}])
def test_garbage_in_every_field_never_raises_anything_but_unsupported(value):
    for name in ("mastodon/activity/create_note.json", "mastodon/actor/person_full.json",
                 "mobilizon/object/event_with_place.json", "mastodon/activity/flag.json"):
        doc = load(name)
        targets = [doc] + [v for v in doc.values() if isinstance(v, dict)]
        for target in targets:
            for key in list(target):
                broken = copy.deepcopy(doc)
                (broken if target is doc else broken[next(k for k in doc if doc[k] is target)])[key] = value
                try:
                    describe(broken)
                except Unsupported as exc:
                    assert str(exc) and "\n" not in str(exc)


def test_deep_nesting_is_not_followed_forever():
    doc: dict = {"id": "https://x.example/n", "type": "Note", "attributedTo": "https://x.example/u"}
    for i in range(50):
        doc = {"id": f"https://x.example/a/{i}", "type": "Announce", "actor": "https://x.example/u",
               "object": doc}
    parsed = parse_activity(doc)
    depth = 0
    while isinstance(parsed, ParsedActivity):
        parsed, depth = parsed.object, depth + 1
    assert parsed is None and 1 < depth < 10


def test_unsupported_reason_is_one_line_and_bounded():
    exc = Unsupported("first line\nsecond\tline " + "x" * 500)
    assert "\n" not in str(exc) and str(exc).startswith("first line second line") and len(str(exc)) <= 200


def test_type_sets_are_disjoint_and_hold_the_basics():
    assert not (ACTOR_TYPES & OBJECT_TYPES or ACTOR_TYPES & ACTIVITY_TYPES or OBJECT_TYPES & ACTIVITY_TYPES)
    assert {"Note", "Proposal", "Tombstone"} <= OBJECT_TYPES
    assert {"Follow", "Undo", "Flag", "Move"} <= ACTIVITY_TYPES


def test_prefixed_types_are_understood():
    note = parse_object({"id": "https://x.example/n", "type": "as:Note", "content": "<p>hi</p>"})
    assert note.type == "Note" and note.content == "<p>hi</p>"


# --- sanitiser -----------------------------------------------------------------------------------------


def test_sanitize_removes_scripts_styles_iframes_images_and_handlers():
    dirty = ('<p onclick="steal()">Hi<script>alert(1)</script><style>p{}</style>'
             '<iframe src="https://x.example">inner</iframe>'
             '<img src="https://x.example/i.png" onerror="x()"></p>')
    assert sanitize_html(dirty) == "<p>Hi</p>"


def test_sanitize_drops_javascript_and_relative_links_but_keeps_text():
    out = sanitize_html('<a href="javascript:alert(1)">a</a> <a href=" JaVaScRiPt:x">b</a> '
                        '<a href="/local">c</a>')
    assert "javascript" not in out.lower() and "href" not in out and ">a</a>" in out and ">c</a>" in out


def test_sanitize_keeps_allowed_tags_and_adds_rel():
    html = ('<p><span class="h-card">'
            '<a href="https://m.example/@a" class="u-url mention evil" rel="me">@a</a></span> '
            '<strong>b</strong> <em>i</em> <del>d</del><br><code>c</code></p>'
            '<blockquote><ul><li>x</li></ul><ol><li>y</li></ol></blockquote><pre>p</pre>'
            '<a href="mailto:a@b.example">mail</a>')
    out = sanitize_html(html)
    for fragment in ('<span class="h-card">', 'class="u-url mention"', "<strong>b</strong>", "<em>i</em>",
                     "<del>d</del>", "<br>", "<code>c</code>", "<pre>p</pre>", 'href="mailto:a@b.example"',
                     "<blockquote><ul><li>x</li></ul><ol><li>y</li></ol>"):
        assert fragment in out
    assert "evil" not in out and 'rel="me"' not in out and out.count(REL) == 2


def test_sanitize_turns_headings_into_bold_paragraphs_and_accepts_non_strings():
    assert sanitize_html("<h3>Title</h3>text") == "<p><strong>Title</strong></p>text"
    assert sanitize_html(None) == "" and sanitize_html("") == ""


# --- small helpers -------------------------------------------------------------------------------------


def test_as_list():
    assert as_list(None) == []
    assert as_list("a") == ["a"]
    assert as_list({"id": "x"}) == [{"id": "x"}]
    assert as_list(["a", "b"]) == ["a", "b"]
    assert as_list(("a",)) == ["a"]
    assert as_list(0) == [0] and as_list("") == [""]


def test_id_of():
    assert id_of("https://x.example/a") == "https://x.example/a"
    assert id_of({"id": "https://x.example/a", "type": "Person"}) == "https://x.example/a"
    assert id_of({"type": "Link", "href": "https://x.example/l"}) == "https://x.example/l"
    assert id_of(["https://x.example/first", "https://x.example/second"]) == "https://x.example/first"
    assert id_of([{"type": "Person", "id": "https://x.example/p"}]) == "https://x.example/p"
    for nothing in (None, "", "   ", 5, {"id": 5}, {"type": "Note"}, [], [None], True):
        assert id_of(nothing) is None


@pytest.mark.parametrize(("text", "expected"), [
    ("2021-11-05T11:46:50Z", datetime(2021, 11, 5, 11, 46, 50, tzinfo=UTC)),
    ("2022-08-01T11:06:49.568Z", datetime(2022, 8, 1, 11, 6, 49, 568000, tzinfo=UTC)),
    ("2017-12-19T16:56:29.7576707+00:00", datetime(2017, 12, 19, 16, 56, 29, 757670, tzinfo=UTC)),
    ("2022-12-11T21:00:00+02:00", datetime(2022, 12, 11, 19, 0, tzinfo=UTC)),
    ("2022-12-11T21:00:00", datetime(2022, 12, 11, 21, 0, tzinfo=UTC)),
    ("2022-12-11", datetime(2022, 12, 11, tzinfo=UTC)),
    ("Sun, 06 Nov 1994 08:49:37 GMT", datetime(1994, 11, 6, 8, 49, 37, tzinfo=UTC)),
    (["2021-11-05T11:46:50Z"], datetime(2021, 11, 5, 11, 46, 50, tzinfo=UTC)),
    ("yesterday", None), ("", None), (None, None), (12345, None),
])
def test_dates(text, expected):
    assert date_of(text) == expected
