// Parses an Adaptive Card with Microsoft's own library (the one Teams' web client renders with)
// and prints every problem it reports as a JSON array: unknown element types, invalid values,
// missing required properties. Usage: node adaptive_card.js CARD.json (NODE_PATH: the tools).
const fs = require("fs");
const AC = require("adaptivecards/dist/adaptivecards.js");

const json = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const card = new AC.AdaptiveCard();
const context = new AC.SerializationContext();
card.parse(json, context);
const problems = [];
for (let i = 0; i < context.eventCount; i++) {
  problems.push(context.getEventAt(i).message);
}
for (const event of card.validateProperties().validationEvents) {
  problems.push(event.message);
}
process.stdout.write(JSON.stringify(problems));
