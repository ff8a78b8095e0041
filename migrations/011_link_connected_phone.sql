-- The number a link was last connected with, kept when the link is lost (`phone` is cleared
-- then), so a self-service relink can record which number it replaced, and whether the
-- owner linked the same one or another.
-- IF NOT EXISTS: a replay of the migrations after an undo (tests/test_cli.py) finds it there.
ALTER TABLE whatsapp_links ADD COLUMN IF NOT EXISTS connected_phone text;
UPDATE whatsapp_links SET connected_phone = phone WHERE status = 'connected';
