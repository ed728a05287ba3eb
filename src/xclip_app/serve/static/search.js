// The Search page ("Find a moment"), shown when the server has --index: see app.js PAGES.
"use strict";
