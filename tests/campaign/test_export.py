"""CSV export: the content (header, order, escaping) and that 100k items stream in constant memory."""

import csv
import io
import tracemalloc

import sqlalchemy as sa


async def test_csv_has_a_header_and_the_items_in_position_order(api, make_owner):
    owner = await make_owner()
    list_id = (await api.post("/lists", json={"name": "L"}, headers=owner.headers)).json()["id"]
    creators = [
        {"platform": "tiktok", "external_id": "t1", "handle": "first", "followers": 10},
        {
            "platform": "instagram",
            "external_id": "i1",
            "handle": '=HYPERLINK("http://evil")',
            "display_name": 'Comma, "Quoted"',
            "notes": "line1\nline2",
            "bucket": "booked",
            "pinned": True,
        },
    ]
    await api.post(f"/lists/{list_id}/items", json={"items": creators}, headers=owner.headers)
    response = await api.get(f"/lists/{list_id}/export.csv", headers=owner.headers)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0] == [
        "position", "bucket", "platform", "external_id", "handle", "display_name", "followers",
        "engagement_rate", "category", "url", "notes", "pinned", "added_at", "email",
    ]  # fmt: skip
    assert len(rows) == 3
    assert rows[1][:7] == ["0", "backlog", "tiktok", "t1", "first", "", "10"]
    second = dict(zip(rows[0], rows[2], strict=True))
    # A cell a spreadsheet would run as a formula is defused with a leading quote.
    assert second["handle"] == '\'=HYPERLINK("http://evil")'
    assert second["display_name"] == 'Comma, "Quoted"'
    assert (second["notes"], second["bucket"], second["pinned"]) == (
        "line1\nline2",
        "booked",
        "true",
    )


async def test_an_empty_list_exports_just_the_header(api, make_owner):
    owner = await make_owner()
    list_id = (await api.post("/lists", json={"name": "L"}, headers=owner.headers)).json()["id"]
    response = await api.get(f"/lists/{list_id}/export.csv", headers=owner.headers)
    assert response.text.count("\r\n") == 1 and response.text.startswith("position,")


async def test_a_100k_item_export_streams_in_constant_memory(api, make_owner, committed):
    owner = await make_owner()
    list_id = (await api.post("/lists", json={"name": "Big"}, headers=owner.headers)).json()["id"]
    n = 100_000
    async with committed.begin() as conn:
        await conn.execute(
            sa.text(
                "INSERT INTO creator_profiles (platform, external_id, handle, display_name, followers)"
                " SELECT 'youtube', 'big' || g, 'handle_' || g, 'Creator number ' || g, g"
                " FROM generate_series(1, :n) g"
            ),
            {"n": n},
        )
        await conn.execute(
            sa.text(
                "INSERT INTO list_items (list_id, creator_id, position)"
                " SELECT :list_id, id, substr(external_id, 4)::int - 1 FROM creator_profiles"
                " WHERE external_id LIKE 'big%'"
            ),
            {"list_id": list_id},
        )
    tracemalloc.start()
    try:
        size = chunks = lines = 0
        async with api.stream(
            "GET", f"/lists/{list_id}/export.csv", headers=owner.headers, timeout=60
        ) as response:
            assert response.status_code == 200
            assert "content-length" not in response.headers  # streamed, not built then sent
            last = b""
            async for chunk in response.aiter_raw():
                size += len(chunk)
                chunks += 1
                lines += chunk.count(b"\n")
                last = chunk
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert lines == n + 1  # header + every item
    assert last.split(b"\r\n")[-2].startswith(b"99999,backlog,youtube,big100000,")
    assert chunks > 50
    # Server and client share this process: the peak covers both, and stays a small fraction
    # of the file (which would be held whole by a build-then-send export).
    assert size > 7_000_000
    assert peak < size / 4, (peak, size)
