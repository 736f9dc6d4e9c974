"""twilio package: `bindings.twilio.sms` and `bindings.twilio.sendgrid`."""
