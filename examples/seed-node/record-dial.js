// The seed page's "Record a two-party call via Dial" handler, as printed, in the same
// Express set-up as the voicemail box. Only the base URL differs: the port comes from PORT.
import express from "express";

const PORT = Number(process.env.PORT ?? 3000);

const app = express();
app.use(express.json());
app.use(express.urlencoded({ extended: true }));

// action_url handler: returns Dial with recording
app.post("/calls/connect-and-record", (req, res) => {
  res.json({
    actions: [
      { say: { text: "This call will be recorded. Please hold while we connect you." } },
      {
        dial: {
          number: "+254720000001",
          record: "record-from-answer",
          callerId: req.body.To,
        },
      },
    ],
  });
});

app.listen(PORT);
