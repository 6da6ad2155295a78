"""Speech understanding shared by recordings and live calls: voice-activity detection."""
