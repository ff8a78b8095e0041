-- Linking by phone number: the pairing code a salon owner types on the phone, and until
-- when it is worth showing.
ALTER TABLE whatsapp_links
    ADD COLUMN pairing_code        text,
    ADD COLUMN pairing_expires_at  timestamptz;
