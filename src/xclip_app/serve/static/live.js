// The Live page, shown when the server has --live: see app.js PAGES.
"use strict";
