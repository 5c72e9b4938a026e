// Set up before every suite of jest's "fast" project (jest.config.js): marks the run so
// that the real-deployment fixture refuses to start there.
process.env.PRIVATE_REGISTRY_FAST_PROJECT = "1";
