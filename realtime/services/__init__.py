"""One module per capability — chat, mail, feed, moderation, projects (members, mutes, closing),
pupils, invitations, bots, public view, audit, auth, account (one's own: export, deletion; a
pupil's erasure), profiles, platform (its administrators' projects) — each deciding with the
policy, committing
through storage/ and publishing on the bus after the commit; and what the edges share: the
request table (requests.py, one dispatcher for WebSocket and HTTP), the channel streams
(streams.py), the welcome (welcome.py) and the bundle of services (bundle.py). Attachments'
content: what a file really is (file_types.py) and images with nothing but their pixels
(images.py), pure functions on files that the upload path runs in a thread.

May import: fanout/, the top-level leaves, protocol/, storage/. Not web/, ws/ or run/."""
