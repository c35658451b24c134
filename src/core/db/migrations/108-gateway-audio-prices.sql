-- Audio priced as providers bill it rather than by tokens: transcription per minute of input audio
-- (whisper-1), speech per million input characters (tts-1, tts-1-hd); NULL: not priced that way.
-- Usage rows keep what was charged for: seconds of input audio and characters of speech input.
ALTER TABLE gateway_models ADD COLUMN audio_input_price_per_minute REAL;
ALTER TABLE gateway_models ADD COLUMN tts_price_per_mchar REAL;
ALTER TABLE gateway_usage ADD COLUMN audio_seconds REAL NOT NULL DEFAULT 0;
ALTER TABLE gateway_usage ADD COLUMN input_characters INTEGER NOT NULL DEFAULT 0;
