// The seed page's voicemail box ("Stay compliant with call recording"), as printed.
// Only the base URLs differ: this app's own URL and port come from APP_URL and PORT, and
// the S3 client finds its endpoint in AWS_ENDPOINT_URL_S3 (the AWS SDK's own setting), so
// the code below is the page's, character for character (see README.md).
const APP_URL = process.env.APP_URL ?? "https://yourapp.example.com";
const PORT = Number(process.env.PORT ?? 3000);

import express from "express";
import { S3Client, PutObjectCommand } from "@aws-sdk/client-s3";

const app = express();
app.use(express.json());
app.use(express.urlencoded({ extended: true }));

const s3 = new S3Client({ region: process.env.AWS_REGION });

// Sautikit calls this when the caller reaches the voicemail box
app.post("/voicemail/prompt", (req, res) => {
  res.json({
    actions: [
      {
        say: {
          text: "You have reached the voicemail of Acme Corp. Please leave a message after the tone. Press the hash key when done.",
          language: "en-US",
        },
      },
      {
        record: {
          action: `${APP_URL}/voicemail/recording`,
          method: "POST",
          timeout: 10,          // stop after 10 s of silence
          maxLength: 120,       // cap at 2 minutes
          finishOnKey: "#",
          transcribe: true,
          transcribeCallback: `${APP_URL}/voicemail/transcript`,
        },
      },
    ],
  });
});

// Sautikit posts recording metadata here when recording ends
app.post("/voicemail/recording", async (req, res) => {
  const { RecordingUrl, RecordingDuration, CallId, RecordingSid } = req.body;

  // Download the recording from Sautikit
  const audioResponse = await fetch(RecordingUrl);
  const audioBuffer = Buffer.from(await audioResponse.arrayBuffer());

  // Upload to S3
  await s3.send(new PutObjectCommand({
    Bucket: process.env.S3_BUCKET,
    Key: `voicemails/${CallId}/${RecordingSid}.wav`,
    Body: audioBuffer,
    ContentType: "audio/wav",
    Metadata: {
      callId: CallId,
      duration: RecordingDuration,
    },
  }));

  // Save reference in your database
  console.log(`Stored voicemail for call ${CallId}, duration ${RecordingDuration}s`);

  // Return empty actions; call ends after recording
  res.json({ actions: [{ hangup: {} }] });
});

// Transcription delivered asynchronously
app.post("/voicemail/transcript", (req, res) => {
  const { TranscriptionText, TranscriptionStatus, CallId } = req.body;
  if (TranscriptionStatus === "completed") {
    console.log(`Transcript for ${CallId}: ${TranscriptionText}`);
    // Save transcript to DB alongside the recording record
  }
  res.sendStatus(204);
});

app.listen(PORT);
