'use strict';
// The CommonJS entry: require('agentburn').
module.exports = require('./lib/index.cjs');
