"""The staff console at /console: the third door, server-rendered pages for people of peer
organizations and clinics without software of their own. Thin: every read and write goes
through `api.services` and the one policy point, as the signed-in person."""
