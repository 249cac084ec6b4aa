"""Tables behind the shopping-intent generator: catalog taxonomy, brands, attributes, phrasings per intent.

Every table is a list or an insertion-ordered dict literal, so iteration order is fixed: the generator's
output depends on it. Templates use ``{slots}``; generate_data.py fills them (see ``Slots`` there).
Product-bound slots: {product} {products} (plural) {a_product} ("a kettle", "jeans") {product2} {be}
("is"/"are") {does} ("does"/"do") {brand} {brand2} {color} {material} {feature} {size}: brands and sizes
come from the drawn product, materials and features from its department, so "nike air fryer" never happens.
"""

from __future__ import annotations

# Intents in model-output order (labels.txt is written in this order).
LABELS = (
    "product_search_category", "product_search_brand", "product_search_attribute", "product_search_price",
    "compare_products", "deals_coupons", "order_status", "order_cancel", "returns_refunds", "shipping_info",
    "payment_methods", "account_help", "store_locator", "size_help", "gift_ideas", "product_reviews",
    "stock_availability", "warranty_support", "price_match", "loyalty_rewards", "customer_service_contact",
    "out_of_scope",
)

# department -> product types (the leaf categories) with their brands, then the department's materials,
# features and default size kind. Brands belong to products, so "dyson mattress" never happens.
DEPARTMENTS = {
    "apparel": {
        "products": {
            "t-shirt": ["nike", "adidas", "uniqlo", "gap", "h&m", "ralph lauren"],
            "jeans": ["levi's", "wrangler", "gap", "zara", "h&m", "uniqlo"],
            "hoodie": ["nike", "adidas", "champion", "gap", "under armour"],
            "jacket": ["the north face", "patagonia", "columbia", "zara", "levi's"],
            "dress": ["zara", "h&m", "calvin klein", "ralph lauren"],
            "skirt": ["zara", "h&m", "uniqlo"], "sweater": ["uniqlo", "gap", "ralph lauren",
            "tommy hilfiger"],
            "leggings": ["lululemon", "nike", "adidas", "under armour"], "coat": ["the north face", "zara",
            "uniqlo"],
            "polo shirt": ["ralph lauren", "tommy hilfiger", "lacoste"], "shorts": ["nike", "adidas", "gap"],
            "pajamas": ["gap", "h&m", "calvin klein"], "swimsuit": ["speedo", "nike", "h&m"],
            "blazer": ["zara", "calvin klein", "tommy hilfiger"], "socks": ["nike", "adidas", "uniqlo"],
            "rain jacket": ["the north face", "patagonia", "columbia"],
        },
        "materials": ["cotton", "wool", "linen", "denim", "silk", "fleece", "organic cotton", "cashmere"],
        "features": ["slim fit", "oversized", "long sleeve", "high waisted", "waterproof", "vintage",
        "plus size"],
        "sizes": "clothing",
    },
    "shoes": {
        "products": {
            "running shoes": ["nike", "adidas", "asics", "brooks", "hoka", "new balance", "saucony"],
            "sneakers": ["nike", "adidas", "converse", "vans", "new balance", "puma", "reebok"],
            "boots": ["timberland", "dr. martens", "ugg"], "sandals": ["birkenstock", "teva", "crocs"],
            "heels": ["steve madden", "sam edelman", "zara"], "loafers": ["clarks", "sperry", "cole haan"],
            "slippers": ["ugg", "skechers"], "hiking boots": ["merrell", "salomon", "columbia", "timberland"],
            "basketball shoes": ["nike", "jordan", "adidas", "puma"], "flip flops": ["havaianas", "crocs"],
            "rain boots": ["hunter", "crocs"],
        },
        "materials": ["leather", "suede", "canvas", "mesh", "vegan leather"],
        "features": ["waterproof", "wide fit", "slip on", "non slip", "lightweight", "memory foam"],
        "sizes": "shoe",
    },
    "electronics": {
        "products": {
            "laptop": ["apple", "dell", "hp", "lenovo", "asus", "microsoft", "acer"],
            "phone": ["apple", "samsung", "google", "xiaomi", "motorola", "oneplus"],
            "tablet": ["apple", "samsung", "lenovo", "microsoft", "amazon"],
            "headphones": ["sony", "bose", "beats", "sennheiser", "jbl"],
            "earbuds": ["apple", "samsung", "sony", "bose", "jbl", "skullcandy"],
            "smart watch": ["apple", "samsung", "garmin", "fitbit"],
            "tv": ["samsung", "lg", "sony", "tcl", "hisense", "vizio"], "monitor": ["dell", "lg", "samsung",
            "asus"],
            "bluetooth speaker": ["jbl", "bose", "sony", "ultimate ears", "anker"],
            "camera": ["canon", "sony", "nikon", "fujifilm", "gopro"], "keyboard": ["logitech", "razer",
            "corsair"],
            "gaming mouse": ["logitech", "razer", "corsair"], "charger": ["anker", "belkin", "samsung",
            "apple"],
            "power bank": ["anker", "belkin", "mophie"], "router": ["netgear", "tp-link", "asus", "linksys"],
            "game console": ["nintendo", "sony", "microsoft"], "vacuum": ["dyson", "shark", "roomba",
            "bissell"],
        },
        "materials": ["aluminum", "plastic", "glass"],
        "features": ["wireless", "noise cancelling", "4k", "gaming", "usb-c", "refurbished", "bluetooth",
                     "touchscreen"],
        "sizes": "gadget",
    },
    "home": {
        "products": {
            "sofa": ["ikea", "ashley", "west elm", "wayfair"], "desk lamp": ["ikea", "philips"],
            "bed frame": ["ikea", "zinus", "wayfair"], "mattress": ["casper", "tempur-pedic", "purple",
            "serta"],
            "curtains": ["ikea", "nicetown"], "rug": ["ruggable", "ikea", "safavieh"],
            "bookshelf": ["ikea", "wayfair"], "office chair": ["herman miller", "steelcase", "ikea"],
            "pillow": ["casper", "brooklinen", "tempur-pedic"], "duvet": ["brooklinen", "ikea"],
            "bath towels": ["brooklinen", "parachute"],
        },
        "materials": ["oak", "velvet", "linen", "bamboo", "walnut", "cotton"],
        "features": ["memory foam", "blackout", "foldable", "mid century", "adjustable", "modern"],
        "sizes": "bed",
    },
    "kitchen": {
        "products": {
            "blender": ["ninja", "vitamix", "nutribullet"],
            "coffee maker": ["keurig", "nespresso", "cuisinart", "hamilton beach"],
            "air fryer": ["ninja", "instant pot", "cosori", "philips"],
            "frying pan": ["le creuset", "lodge", "oxo", "t-fal"], "knife set": ["cuisinart", "henckels",
            "oxo"],
            "toaster": ["cuisinart", "breville", "hamilton beach"], "kettle": ["breville", "cuisinart",
            "fellow"],
            "dinnerware set": ["le creuset", "corelle"], "rice cooker": ["zojirushi", "instant pot", "aroma"],
            "stand mixer": ["kitchenaid", "cuisinart"], "espresso machine": ["breville", "delonghi",
            "nespresso"],
            "slow cooker": ["crock-pot", "instant pot", "hamilton beach"],
        },
        "materials": ["stainless steel", "cast iron", "ceramic", "glass", "copper"],
        "features": ["non-stick", "programmable", "dishwasher safe", "electric", "induction"],
        "sizes": "appliance",
    },
    "beauty": {
        "products": {
            "lipstick": ["maybelline", "l'oreal", "revlon", "mac"], "mascara": ["maybelline", "l'oreal"],
            "nail polish": ["essie", "opi", "revlon"], "moisturizer": ["cerave", "neutrogena", "olay"],
            "sunscreen": ["neutrogena", "la roche-posay", "nivea"], "face serum": ["the ordinary", "olay"],
            "body lotion": ["nivea", "dove", "cerave"], "shampoo": ["dove", "pantene", "head & shoulders"],
            "perfume": ["chanel", "dior", "calvin klein", "versace"], "hair dryer": ["dyson", "revlon",
            "conair"],
        },
        "materials": ["shea butter", "aloe", "argan oil", "natural"],
        "features": ["fragrance free", "spf 50", "vegan", "cruelty free", "waterproof", "sensitive skin"],
        "sizes": "cosmetic",
    },
    "toys": {
        "products": {
            "building set": ["lego", "mega bloks"], "board game": ["hasbro", "ravensburger"],
            "doll": ["barbie", "american girl", "mattel"], "puzzle": ["ravensburger", "melissa & doug"],
            "rc car": ["traxxas", "hot wheels"], "plush toy": ["jellycat", "squishmallows"],
            "action figure": ["hasbro", "marvel", "mattel"], "play kitchen": ["kidkraft", "melissa & doug"],
        },
        "materials": ["wooden", "plastic", "plush"],
        "features": ["educational", "battery operated", "glow in the dark", "stem"],
        "sizes": "age",
    },
    "sports": {
        "products": {
            "yoga mat": ["lululemon", "manduka", "gaiam"], "dumbbells": ["bowflex", "amazon basics"],
            "tennis racket": ["wilson", "babolat", "head"], "bike helmet": ["giro", "bell"],
            "treadmill": ["nordictrack", "peloton"], "soccer ball": ["adidas", "nike"],
            "camping tent": ["coleman", "rei", "the north face"], "water bottle": ["yeti", "hydro flask",
            "stanley"],
            "exercise bike": ["peloton", "schwinn"], "sleeping bag": ["coleman", "rei", "the north face"],
        },
        "materials": ["stainless steel", "rubber", "nylon", "carbon fiber"],
        "features": ["adjustable", "insulated", "foldable", "lightweight", "non slip"],
        "sizes": "gear",
    },
    "grocery": {
        "products": {
            "coffee beans": ["lavazza", "starbucks", "illy"], "olive oil": ["bertolli",
            "california olive ranch"],
            "protein powder": ["optimum nutrition", "myprotein"], "green tea": ["twinings", "lipton"],
            "pasta": ["barilla", "de cecco"], "almond milk": ["silk", "almond breeze"],
            "cereal": ["kellogg's", "cheerios"], "dark chocolate": ["lindt", "ghirardelli"],
        },
        "materials": ["organic", "decaf", "whole bean"],
        "features": ["gluten free", "sugar free", "keto", "fair trade", "vegan"],
        "sizes": "grocery",
    },
    "pets": {
        "products": {
            "dog food": ["purina", "pedigree", "royal canin", "blue buffalo"], "cat litter": ["tidy cats",
            "arm & hammer"],
            "dog leash": ["kong", "ruffwear"], "cat tree": ["frisco", "amazon basics"],
            "pet bed": ["frisco", "kong"],
            "dog toys": ["kong", "nylabone"], "fish tank": ["tetra", "aqueon"],
        },
        "materials": ["nylon", "rope", "plush"],
        "features": ["durable", "washable", "heavy duty"],
        "sizes": "pet",
    },
    "baby": {
        "products": {
            "stroller": ["graco", "uppababy", "chicco"], "diapers": ["pampers", "huggies"],
            "car seat": ["graco", "chicco", "britax"], "baby monitor": ["nanit", "vtech"],
            "high chair": ["graco", "stokke"], "baby carrier": ["ergobaby", "babybjorn"],
        },
        "materials": ["organic cotton", "bamboo"],
        "features": ["lightweight", "convertible", "foldable", "hypoallergenic"],
        "sizes": "baby",
    },
}

# Nouns used only in the plural ("the jeans are") and mass nouns ("olive oil"): no a/an, no extra -s.
PLURAL_NOUNS = ["jeans", "leggings", "shorts", "pajamas", "socks", "running shoes", "sneakers", "boots",
                "sandals", "heels", "loafers", "slippers", "hiking boots", "basketball shoes", "flip flops",
                "rain boots", "headphones", "earbuds", "curtains", "bath towels", "dumbbells", "diapers",
                "dog toys", "coffee beans"]
MASS_NOUNS = ["olive oil", "protein powder", "green tea", "pasta", "almond milk", "cereal", "dark chocolate",
              "dog food", "cat litter", "sunscreen", "shampoo", "perfume", "moisturizer", "body lotion",
              "mascara", "face serum", "nail polish", "lipstick"]

# size kind -> values; SIZE_OVERRIDES picks another kind for single products.
SIZE_KINDS = {
    "clothing": ["xs", "small", "medium", "large", "xl", "xxl", "size 8", "size 12", "size m", "petite",
                 "3xl"],
    "shoe": ["size 10", "size 9.5", "size 7", "10", "8.5", "us 9", "uk 7", "eu 42", "size 11 wide",
             "womens 8"],
    "gadget": ["2 pack", "black edition", "latest model", "2024 model", "pro version"],
    "screen": ["55 inch", "65 inch", "32 inch", "27 inch", "75 inch"],
    "laptop": ["13 inch", "15 inch", "16gb ram", "1tb", "512gb"],
    "storage": ["128gb", "256gb", "512gb", "1tb"],
    "watch": ["41mm", "45mm", "44mm", "40mm"],
    "battery": ["10000mah", "20000mah", "65w", "20w", "2 pack"],
    "pack": ["2 pack", "3 pack", "set of 2", "6 pack", "set of 4"],
    "bed": ["queen size", "king size", "twin", "full size", "california king"],
    "rug": ["5x7", "8x10", "3x5", "runner"],
    "curtain": ["84 inch", "63 inch", "96 inch", "2 panels"],
    "sofa": ["3 seater", "2 seater", "sectional", "loveseat"],
    "appliance": ["compact", "large", "5 quart", "1000w", "professional"],
    "toaster": ["2 slice", "4 slice", "extra wide slot"],
    "kettle": ["1.7l", "1l", "0.8l"],
    "coffee": ["12 cup", "single serve", "10 cup"],
    "cooker": ["5 quart", "6 qt", "8 quart", "3 cup"],
    "cookware": ["8 inch", "10 inch", "12 inch", "set of 3"],
    "cosmetic": ["50ml", "100ml", "1 oz", "3.4 oz", "travel size", "2 pack", "full size"],
    "grocery": ["500ml", "1l", "1kg", "16 oz", "12 oz", "2 lb", "2 pack", "family size", "6 pack"],
    "age": ["for ages 3+", "for ages 8-12", "for 5 year olds", "for toddlers"],
    "pieces": ["1000 pieces", "500 piece", "300 pc", "for ages 8-12"],
    "gear": ["small", "medium", "large", "adult size", "youth size", "6mm", "2 person", "4 person"],
    "weight": ["10 lb", "20kg", "15 lbs", "5kg", "pair of 25 lb"],
    "bottle": ["32 oz", "24 oz", "40 oz", "1l"],
    "ball": ["size 5", "size 4", "size 3"],
    "pet": ["10 lb", "20kg", "15 lbs", "small breed", "large breed", "small", "large"],
    "tank": ["10 gallon", "20 gallon", "5 gallon"],
    "baby": ["newborn", "size 1", "size 3", "0-3 months", "infant", "toddler"],
}
SIZE_OVERRIDES = {
    "tv": "screen", "monitor": "screen", "laptop": "laptop", "phone": "storage", "tablet": "storage",
    "game console": "storage", "smart watch": "watch", "power bank": "battery", "charger": "battery",
    "bath towels": "pack", "pillow": "bed", "duvet": "bed", "mattress": "bed", "bed frame": "bed",
    "rug": "rug", "curtains": "curtain", "sofa": "sofa", "desk lamp": "pack", "bookshelf": "pack",
    "office chair": "gadget", "knife set": "pack", "dinnerware set": "pack", "frying pan": "cookware",
    "building set": "pieces", "puzzle": "pieces", "dumbbells": "weight", "water bottle": "bottle",
    "soccer ball": "ball", "dog toys": "pack", "fish tank": "tank", "dog leash": "clothing",
    "bike helmet": "clothing", "swimsuit": "clothing", "toaster": "toaster", "kettle": "kettle",
    "coffee maker": "coffee", "espresso machine": "coffee", "rice cooker": "cooker", "slow cooker": "cooker",
    "air fryer": "cooker",
}
# Products whose features differ from their department's ("grain free dog leash" never happens).
FEATURE_OVERRIDES = {
    "dog food": ["grain free", "high protein", "puppy", "senior"], "cat litter": ["clumping", "unscented"],
    "dog leash": ["retractable", "reflective"], "cat tree": ["tall", "multi level"],
    "pet bed": ["orthopedic", "washable"], "dog toys": ["chew proof", "squeaky"],
    "fish tank": ["led", "starter kit"],
}

# Products whose materials differ from their department's ("oak pillow" never happens).
MATERIAL_OVERRIDES = {
    "pillow": ["cotton", "linen", "bamboo"], "duvet": ["cotton", "linen", "wool"],
    "curtains": ["linen", "velvet", "cotton"], "bath towels": ["cotton", "bamboo"], "rug": ["wool", "jute"],
    "mattress": ["memory foam", "latex"], "office chair": ["mesh", "leather"], "sofa": ["velvet", "leather"],
    "stroller": ["aluminum"], "car seat": ["plastic"], "baby monitor": ["plastic"], "high chair": ["wooden"],
    "treadmill": ["steel"], "exercise bike": ["steel"], "yoga mat": ["rubber", "cork"],
    "soccer ball": ["synthetic leather"], "camping tent": ["nylon", "polyester"], "sleeping bag": ["down"],
    "tennis racket": ["carbon fiber", "graphite"], "dumbbells": ["rubber", "cast iron"],
    "coffee beans": ["arabica", "decaf"], "olive oil": ["extra virgin"], "protein powder": ["whey", "pea"],
    "green tea": ["matcha", "loose leaf"], "pasta": ["whole wheat", "durum wheat"],
    "almond milk": ["organic"], "cereal": ["whole grain", "oat"], "dark chocolate": ["70% cocoa", "organic"],
}

# Intents whose queries only make sense for some products; all other intents draw from every product.
POOLS = {
    "warranty_support": ["electronics", "blender", "coffee maker", "air fryer", "toaster", "kettle",
                         "rice cooker", "stand mixer", "espresso machine", "slow cooker", "desk lamp",
                         "hair dryer", "treadmill", "exercise bike", "baby monitor", "rc car"],
    "size_help": ["apparel", "shoes"],
}

# Per department: the broad category words shoppers type, who a product is for, and a price band (low, high)
# from which price constraints are drawn ("shampoo under $1000" never happens).
CATEGORY_WORDS = {
    "apparel": ["womens clothing", "mens clothing", "kids clothes", "activewear", "clothing", "outerwear"],
    "shoes": ["shoes", "footwear", "womens shoes", "mens shoes", "kids shoes"],
    "electronics": ["electronics", "video games", "computers", "tech", "smart home", "audio"],
    "home": ["home decor", "furniture", "bedding", "bath", "home goods"],
    "kitchen": ["kitchen appliances", "cookware", "small appliances", "kitchen stuff"],
    "beauty": ["beauty products", "skincare", "makeup", "hair care", "fragrances"],
    "toys": ["toys", "games", "kids toys", "puzzles and games"],
    "sports": ["sports equipment", "outdoor gear", "fitness equipment", "camping gear"],
    "grocery": ["groceries", "snacks", "pantry", "drinks"],
    "pets": ["pet supplies", "dog stuff", "cat supplies"],
    "baby": ["baby products", "baby gear", "nursery"],
}
AUDIENCE = {
    "apparel": ["men", "women", "kids", "boys", "girls", "teens", "plus size women"],
    "shoes": ["men", "women", "kids", "boys", "girls", "flat feet"],
    "electronics": ["students", "gaming", "kids", "seniors", "home office", "travel"],
    "home": ["small spaces", "a kids room", "students", "a guest room", "a studio apartment"],
    "kitchen": ["small kitchens", "beginners", "families", "college students"],
    "beauty": ["men", "women", "teens", "dry skin", "oily skin"],
    "toys": ["kids", "toddlers", "boys", "girls", "teens", "3 year olds"],
    "sports": ["men", "women", "kids", "beginners", "home workouts"],
    "grocery": ["athletes", "kids", "vegans", "breakfast"],
    "pets": ["puppies", "kittens", "senior dogs", "large dogs", "small dogs"],
    "baby": ["newborns", "toddlers", "twins", "travel"],
}
PRICE_BANDS = {"apparel": (15, 200), "shoes": (25, 250), "electronics": (20, 2000), "home": (20, 1500),
               "kitchen": (15, 500), "beauty": (5, 100), "toys": (10, 150), "sports": (10, 1500),
               "grocery": (5, 50), "pets": (10, 200), "baby": (10, 500)}
# Products a colour makes no sense for: templates with a {color} slot never draw them.
COLORLESS = ["grocery", "dog food", "cat litter", "sunscreen", "shampoo", "perfume", "moisturizer",
             "body lotion", "face serum", "mascara"]
IRREGULAR_PLURALS = {"bookshelf": "bookshelves"}
COLORS = ["red", "black", "white", "blue", "navy", "green", "pink", "grey", "beige", "brown", "yellow",
          "purple", "olive", "gold", "silver", "light blue", "dark green", "burgundy", "cream", "orange"]
PEOPLE = ["my mom", "my dad", "my wife", "my husband", "my girlfriend", "my boyfriend", "a coworker",
          "my boss", "my sister", "my brother", "a 5 year old", "a teenager", "my grandma", "a new dad",
          "my best friend", "my son", "my daughter", "my teacher", "a 10 year old boy", "my in-laws",
          "a college student"]
# {occasion} fits anyone in PEOPLE; {event} (any occasion) is used only in templates without a person.
OCCASIONS = ["birthday", "christmas", "hanukkah", "graduation", "diwali", "eid", "easter"]
EVENTS = OCCASIONS + ["thank you", "get well soon", "anniversary", "mother's day", "father's day",
                      "valentine's day", "housewarming", "baby shower", "secret santa", "retirement",
                      "wedding"]
HOLIDAYS = ["christmas", "friday", "the weekend", "next tuesday", "mother's day", "the 24th", "tomorrow"]
HOBBIES = ["cooking", "gaming", "running", "camping", "reading", "gardening", "yoga", "coffee", "music",
           "photography", "fishing", "skincare"]
CITIES = ["downtown", "brooklyn", "austin", "seattle", "chicago", "london", "manchester", "berlin", "denver",
          "san jose", "miami", "toronto", "dallas", "boston", "phoenix", "portland", "atlanta", "leeds"]
DURATIONS = ["a week", "10 days", "two weeks", "5 days", "over a month", "three days"]
DAYS = ["yesterday", "last week", "on monday", "last tuesday", "3 days ago", "two weeks ago", "on friday",
        "this morning", "10 days ago", "over a week ago", "on the 3rd"]
WEEKDAYS = ["sunday", "saturday", "monday", "christmas eve", "new year's day", "thanksgiving", "easter"]
PAYMENTS = ["paypal", "apple pay", "google pay", "klarna", "afterpay", "a gift card", "visa", "mastercard",
            "amex", "cash on delivery", "bank transfer", "venmo", "discover", "a debit card", "store credit"]
CARRIERS = ["ups", "fedex", "dhl", "usps", "royal mail", "the courier", "amazon logistics"]
COUNTRIES = ["canada", "the uk", "germany", "australia", "mexico", "france", "japan", "india", "alaska",
             "hawaii", "puerto rico", "ireland", "spain", "brazil", "new zealand"]
RETAILERS = ["amazon", "walmart", "target", "best buy", "costco", "ebay", "home depot", "kohl's"]
ISSUES = ["my order", "a refund", "a damaged item", "my account", "a billing problem", "a missing package",
          "a complaint", "an exchange"]
HEIGHTS = ["5'2", "5'5", "5'8", "5'10", "6'1", "6 foot", "170cm"]
# out-of-scope fillers
TEAMS = ["lakers", "yankees", "chelsea", "real madrid", "patriots", "man united", "warriors", "cowboys"]
DISHES = ["lasagna", "banana bread", "pad thai", "chicken curry", "pancakes", "guacamole", "chili",
          "sourdough bread", "fried rice"]
LANGUAGES = ["spanish", "french", "german", "japanese", "italian"]
TRIVIA = ["how tall is mount everest", "who painted the mona lisa", "what is the capital of australia",
          "how far is the moon", "who invented the telephone", "how many bones are in the human body",
          "what year did the titanic sink", "why is the sky blue", "what is the speed of light",
          "who wrote romeo and juliet", "how old is the universe", "what's the biggest animal on earth"]

# Price phrasings for product_search_price; {a} < {b} are amounts.
PRICE_FORMS = ["under ${a}", "under {a}", "below {a} dollars", "less than {a} bucks", "{a}-{b}", "${a}-${b}",
               "between ${a} and ${b}", "between {a} and {b} dollars", "for under {a}", "max {a}",
               "around {a} pounds", "up to {a} euros", "${a} or less", "no more than ${a}", "under {a} usd",
               "from {a} to {b}", "{a} to {b} dollars", "price range {a}-{b}", "in the ${a} range",
               "cheaper than {a}", "below ${a}", "under {a} bucks"]
AMOUNTS = [5, 10, 15, 20, 25, 30, 35, 40, 50, 60, 70, 75, 80, 99, 100, 120, 150, 200, 250, 300, 400, 500, 800,
           1000, 1500, 2000]

# intent -> phrasings, terse keyword queries first, long natural ones last. Product-search sub-intents share
# the catalog vocabulary; what separates them is the cue: a brand alone, an attribute, a price.
TEMPLATES = {
    "product_search_category": [
        "{product}", "{products}", "{category}", "{products} for {audience}", "shop {category}",
        "show me {products}", "browse {category}", "{category} for {audience}", "i'm looking for {a_product}",
        "looking for {a_product}", "i need {a_product}", "do you sell {products}",
        "do you guys have {products}", "where can i find {products}", "where are the {products} on your site",
        "new {products}", "all {products}", "{category} new arrivals", "best {products}",
        "top {category} picks", "i want to buy {a_product}", "take me to the {category} section",
        "what kind of {products} do you have", "i'd like to see your {category}", "{products} {audience}",
        "popular {products} right now", "hi, i'm trying to find {a_product}, what do you have on the site",
        "can you show me some options for {products}, i need to replace mine",
        "could you show me the {category} you have for {audience}",
    ],
    "product_search_brand": [
        "{brand}", "{brand} {products}", "{brand} {product}", "{brand} {category}", "shop {brand}",
        "do you carry {brand}", "do you sell {brand}", "anything from {brand}", "show me {brand} stuff",
        "{brand} products", "{brand} store", "new {brand} collection", "latest from {brand}",
        "i'm looking for {brand} {products}", "{brand} {products} for {audience}", "all {brand} items",
        "is {brand} available on this site", "i only wear {brand}, what do you have",
        "show me everything you have by {brand}", "any {brand} {products} in the catalog", "{brand} official",
        "{products} by {brand}", "{brand} for {audience}", "best {brand} {products}",
        "hi there, i'm a big fan of {brand}, could you show me which {brand} {products} you sell",
        "my kid only wants {brand} {products}, where do i find them on the app",
    ],
    "product_search_attribute": [
        "{color} {product}", "{color} {products}", "{material} {product}", "{feature} {product}",
        "{product} {size}", "{color} {product} {size}", "{brand} {product} {color} {size}",
        "{brand} {color} {products}", "{products} in {color}", "{product} in {size}",
        "{feature} {products} for {audience}", "{products} made of {material}",
        "{color} {material} {product}", "{material} {products} in {color}",
        "do you have {a_product} in {color}", "do you have the {product} in {size}",
        "{product} {feature} {color}", "{feature} {brand} {product}",
        "i need a {feature} {product} in {size}", "filter {products} by color {color}",
        "{products} {color} {size} {audience}", "only show {feature} {products}", "{size} {color} {product}",
        "best {feature} {products}",
        "i'm looking for {a_product} in {color}, preferably {material}, in {size} if you have it",
        "can you show me only the {feature} {products}, ideally in {color}",
        "do you have any {material} {products} that come in {color} and {size}",
    ],
    "product_search_price": [
        "{product} {price_range}", "{products} {price_range}", "{brand} {products} {price_range}",
        "{color} {product} {price_range}", "cheap {products}", "cheapest {product}",
        "affordable {products} for {audience}", "budget {product}", "{products} on a budget",
        "show me {products} {price_range}", "{products} sorted by price low to high",
        "lowest price {product}", "{category} {price_range}", "what's the cheapest {product} you have",
        "inexpensive {products}", "{feature} {product} {price_range}",
        "price filter {price_range} {products}", "cheap {brand} {products}",
        "good {product} that won't break the bank", "{products} for less than ${price}",
        "best {products} {price_range}", "i'm on a tight budget, any {products} {price_range}",
        "i want to spend {price_range} on {a_product}, what are my options",
        "can you find me a decent {product} {price_range} please, nothing fancy",
        "what {products} do you have {price_range} for {audience}",
    ],
    "compare_products": [
        "{brand} vs {brand2}", "{brand} {product} vs {brand2} {product}", "{product} vs {product2}",
        "{brand} or {brand2} {products}", "compare {product} and {product2}",
        "compare {brand} and {brand2} {products}", "{product} or {product2} which is better",
        "which is better {brand} or {brand2}", "difference between {brand} and {brand2} {products}",
        "what's the difference between the {brand} and {brand2} {product}",
        "side by side comparison {products}", "compare these two {products}",
        "{brand} {product} versus {brand2}", "should i get the {brand} or the {brand2} {product}",
        "is {brand} better than {brand2} for {products}", "{products} comparison",
        "pros and cons of {brand} vs {brand2}", "{brand} vs {brand2} {product}, which is better",
        "i can't decide between the {brand} {product} and the {brand2} one, which would you recommend",
        "which one is better value, the {product} or the {product2}",
        "can you compare the specs of the {brand} and {brand2} {products} for me",
    ],
    "deals_coupons": [
        "coupon code", "coupons", "promo code", "discount code for {category}", "{brand} coupon",
        "any deals on {products}", "{products} on sale", "is there a sale on {brand} {products}",
        "{category} sale", "clearance {products}", "black friday deals", "cyber monday deals on {products}",
        "today's deals", "deal of the day", "flash sale", "{percent}% off {products}",
        "do you have a student discount", "first order discount", "my promo code isn't working",
        "where do i enter a coupon", "buy one get one free {products}", "outlet deals {brand}",
        "when is your next big sale", "military discount", "any promotions going on right now",
        "hey, do you have any coupon codes i could use on my order today",
        "the {percent}% off code from your email doesn't work at checkout",
        "{be} the {product} going on sale soon", "is there a discount on {products} right now",
    ],
    "order_status": [
        "where is my order", "where's my order", "order status", "track my order", "track order {order}",
        "track my package", "order {order}", "{order}", "status of order {order}", "has my order shipped yet",
        "did my {product} ship yet", "when will my {product} arrive", "my package hasn't arrived",
        "my order is late", "why is my order taking so long", "{carrier} tracking isn't updating",
        "tracking says delivered but i didn't get it", "is my order on the way",
        "estimated delivery for order {order}", "i ordered {a_product} {day} and it still hasn't come",
        "hi, can you tell me where my package is, i ordered it {day}", "where is my {brand} order",
        "check the status of my order please", "shipment tracking {order}", "when does my order ship",
        "it's been {duration} and my order {order} still says processing, what's going on",
        "i ordered {a_product} {day}, when will it get here",
        "i ordered {a_product} {day} and it still says processing",
    ],
    "order_cancel": [
        "cancel my order", "cancel order {order}", "cancel {order}", "how do i cancel an order",
        "i want to cancel my order", "please cancel the {product} i ordered {day}",
        "can i still cancel my order", "cancel my purchase", "stop my order from shipping",
        "i ordered the wrong {product}, cancel it please", "cancel one item from order {order}",
        "i changed my mind, please cancel", "cancel my {brand} order",
        "how to cancel an order that's already shipped", "i placed an order by mistake, can i cancel it",
        "undo my last order", "cancel the whole order", "order cancellation {order}",
        "is it too late to cancel order {order}", "accidentally ordered twice please cancel one",
        "cancellation", "i don't want the {product} anymore, cancel before it ships",
        "hi, i just placed order {order} a few minutes ago and need to cancel it right away",
        "i ordered {a_product} {day} by mistake, please cancel it",
    ],
    "returns_refunds": [
        "return policy", "how do i return an item", "return my {product}", "i want to return the {product}",
        "refund status", "where is my refund", "i want a refund", "i need a refund for order {order}",
        "start a return for {order}", "print return label", "return label",
        "the {product} {be} not what i expected, can i send it back", "how long do refunds take",
        "can i return {products} without a receipt", "exchange {product} for a different size",
        "return window for {category}", "the {product} arrived damaged, i want my money back",
        "my refund hasn't shown up on my card", "send back {brand} {product}", "do you offer free returns",
        "i returned my {product} {day} and still no refund", "can i return opened {products}",
        "drop off a return in store", "returns",
        "hello, i bought {a_product} {day} but it doesn't work for me, how do i return it for a full refund",
        "i ordered {a_product} {day} by mistake, how do i send it back",
        "i ordered the {product} in {size} but i need a different one, can i exchange it",
    ],
    "shipping_info": [
        "shipping cost", "how much is shipping", "how much is shipping to {country}", "free shipping",
        "do you ship to {country}", "delivery time to {country}", "how long does delivery take",
        "express shipping", "next day delivery", "same day delivery in {city}", "international shipping",
        "shipping options", "do you deliver on weekends", "free shipping threshold",
        "minimum order for free shipping", "is shipping free over ${price}", "which courier do you use",
        "do you use {carrier}", "can i get {a_product} by {holiday}", "do you ship {products} to {country}",
        "shipping rates", "can i choose a delivery time slot", "do you ship to po boxes",
        "how long does standard shipping take",
        "hello, i live in {country}, can you ship there and roughly how long would it take",
        "if i order {a_product} today will it arrive before {holiday}",
        "if i order {a_product} today, when will it get here",
        "how long does it take to get {a_product} delivered to {country}",
    ],
    "payment_methods": [
        "can i pay with {payment}", "do you accept {payment}", "payment options", "payment methods",
        "is {payment} accepted", "pay with {payment}", "how do i pay with {payment}", "buy now pay later",
        "pay in installments", "my card was declined", "payment failed", "why was i charged twice",
        "update my payment method", "remove saved card", "can i split the payment between two cards",
        "checkout won't accept my card", "was my payment successful", "do you take {payment}",
        "can i use two payment methods on one order", "what forms of payment do you take",
        "is it safe to enter my card details here", "{payment}?", "payment declined {payment}",
        "i tried to pay with {payment} but it keeps failing, what am i doing wrong",
        "can i pay for the {product} in 4 installments with {payment}",
    ],
    "account_help": [
        "reset password", "forgot password", "i forgot my password", "can't log in",
        "can't sign in to my account", "change my email address", "delete my account", "close my account",
        "update my address", "create an account", "sign up", "my account is locked", "change username",
        "login not working", "two factor authentication", "i didn't get the verification code",
        "unsubscribe from emails", "change phone number on my account", "where are my account settings",
        "someone hacked my account", "merge two accounts", "how do i update my profile",
        "i keep getting logged out of the app", "password reset email never came",
        "hi, i changed my email and now i can't get into my account, what should i do",
    ],
    "store_locator": [
        "store near me", "stores near me", "nearest store", "stores in {city}", "is there a store in {city}",
        "store hours", "store hours {city}", "what time does the {city} store close",
        "is the {city} store open today", "are you open on {weekday}", "holiday hours", "find a store",
        "store locator", "directions to the nearest store", "store address in {city}", "closest location",
        "where is your shop in {city}", "is there parking at the {city} store",
        "do you have a physical store", "what are your opening hours on {weekday}",
        "{city} store phone number", "nearest outlet to {city}",
        "i'm visiting {city} next week, is there a location nearby and when does it open",
        "what time do you open tomorrow morning",
    ],
    "size_help": [
        "size chart", "size guide", "what size should i get", "size guide for {products}",
        "{brand} size chart", "{does} the {product} run small", "{does} the {product} run big",
        "{be} the {product} true to size", "are {brand} {products} true to size",
        "i'm usually a {size}, what size in {brand}", "how {does} the {product} fit",
        "what size {product} for {person}", "size conversion uk to us", "eu to us shoe size",
        "how do i measure my waist", "how to measure for {a_product}", "fit guide",
        "i'm {height} and 160 lbs, what size {product}", "should i size up in {brand} {products}",
        "is {size} too big for me", "sizing help {product}",
        "i'm between a medium and a large in {products}, which should i pick",
        "my feet are wide, what size {brand} {products} should i order",
        "what's the difference between {brand} sizes and normal sizes for {products}",
        "i ordered the {product} in {size} and it's too big, what size should i get instead",
    ],
    "gift_ideas": [
        "gift for {person}", "gift ideas for {person}", "{event} gift", "{occasion} gifts for {person}",
        "what should i get {person} for {occasion}", "present for {person} under ${price}", "gift ideas",
        "gifts under {price}", "unique gift for {person}", "last minute {event} gifts",
        "gift for {person} who has everything", "stocking stuffers",
        "{occasion} gift for {person} who likes {hobby}", "gift for someone who loves {hobby}",
        "good gifts for {hobby} lovers", "what's a good {event} gift", "help me pick a present",
        "gift card for {person}", "{event} present ideas", "thoughtful gift for {person}",
        "i need a {occasion} present for {person}, budget around ${price}, any ideas",
        "what do you get {person} who is really into {hobby}",
    ],
    "product_reviews": [
        "{brand} {product} reviews", "reviews for {products}", "{product} reviews",
        "{be} the {brand} {product} any good", "what do people say about the {brand} {product}",
        "{product} ratings", "customer reviews {brand} {product}", "{be} the {product} worth it",
        "best reviewed {products}", "highest rated {products}", "top rated {brand} {products}",
        "how many stars does the {product} have", "any complaints about {brand} {products}", "read reviews",
        "show me reviews with photos", "honest opinions on the {brand} {product}",
        "is {brand} a good brand for {products}", "are {brand} {products} reliable",
        "what's the average rating of the {brand} {product}", "how do i leave a review",
        "do the reviews say the {product} {be} durable",
        "i'm thinking about buying the {brand} {product}, what do other customers say about it",
        "which {product} has the best reviews",
    ],
    "stock_availability": [
        "{be} the {product} in stock", "{brand} {product} in stock", "{product} in stock?",
        "when will the {product} be back in stock", "out of stock", "{be} the {product} available in {size}",
        "do you have the {color} {product} in stock", "notify me when the {product} {be} back",
        "back in stock alert", "{product} availability", "{be} the {product} available at the {city} store",
        "check stock {product}", "restock date for {brand} {product}", "any {products} left in {size}",
        "{product} sold out", "why {be} the {product} always sold out",
        "do you have any {products} left", "{be} the {brand} {product} available for pickup today",
        "when are you getting more {products}", "it says unavailable, will the {product} come back",
        "hi, the {color} {product} i wanted shows out of stock, do you know when it will be restocked",
        "do you still have the {color} {product} in stock",
    ],
    "warranty_support": [
        "warranty", "warranty info", "warranty for {product}", "{brand} warranty",
        "how long is the warranty on the {brand} {product}", "my {product} stopped working",
        "my {brand} {product} {be} broken", "{product} won't turn on", "{product} not working",
        "defective {product}", "{be} my {product} still under warranty", "repair my {product}",
        "where can i get my {product} repaired", "extended warranty", "protection plan for {product}",
        "file a warranty claim", "warranty claim order {order}", "replace faulty {product}",
        "the {product} i bought {day} started making a weird noise", "{product} overheating",
        "{brand} {product} shutting off randomly", "how do i register my {product} for warranty",
        "the {product} broke after two months, is that covered",
        "my {brand} {product} started leaking and it's barely a year old, can you fix or replace it",
        "i bought {a_product} {day} and it stopped working, can you repair it",
    ],
    "price_match": [
        "price match", "do you price match", "price match policy", "price match {retailer}",
        "do you match {retailer} prices", "{retailer} has the {product} for ${price}",
        "i found the {brand} {product} cheaper at {retailer}",
        "{product} {be} ${price} cheaper on {retailer}", "can you match this price", "price adjustment",
        "the price dropped after i bought it", "refund the price difference",
        "do you match online prices in store", "competitor price match", "price guarantee",
        "will you beat the {retailer} price", "is there a lowest price guarantee", "price protection",
        "match {retailer} price on {products}", "{product} {be} cheaper on another site",
        "i saw it for ${price} at {retailer}, can you do the same",
        "the price went down the day after i ordered, can i get the difference back",
        "the {product} i bought {day} is now ${price} less, do you offer price adjustments",
        "i bought {a_product} {day} and now it's cheaper, can i get the difference",
    ],
    "loyalty_rewards": [
        "rewards points", "my points balance", "how many points do i have", "loyalty program",
        "join the rewards program", "redeem points", "use my points to buy {a_product}", "points expired",
        "when do my points expire", "vip membership", "membership benefits", "how do i earn points",
        "points not added for order {order}", "member discount", "birthday reward", "rewards card",
        "what tier am i in", "gold member perks", "do i get points on {brand} purchases",
        "cancel my rewards membership", "how many points for ${price} off", "double points weekend",
        "i'm a rewards member but my points from my order {day} didn't show up",
        "can i combine my reward points with a coupon on {a_product}",
        "do members get a discount on {products}", "do i earn points if i buy {a_product}",
    ],
    "customer_service_contact": [
        "talk to a human", "customer service", "customer service number", "contact support", "phone number",
        "live chat", "speak to an agent", "speak to a real person", "agent", "representative",
        "email customer service", "call me back", "how do i contact you",
        "i need to talk to someone about {issue}", "customer service hours", "file a complaint",
        "support chat not working", "connect me to a real person please",
        "is there a phone number i can call", "what's your support email", "i want to speak with a manager",
        "this bot isn't helping, get me a human", "how do i reach someone about {issue}",
        "i've been on hold for an hour about {issue}", "can someone from support call me about {issue}",
        "i need to speak to someone about {issue}, not a bot",
    ],
    "out_of_scope": [
        "what's the weather today", "weather in {city}", "will it rain in {city} tomorrow", "tell me a joke",
        "who won the {team} game last night", "{team} score", "what time is it", "{trivia}",
        "recipe for {dish}", "how do i make {dish}", "news today", "translate hello to {language}",
        "who is the president", "set an alarm for {n1} am", "what's {n1} times {n2}", "play some music",
        "good movies to watch tonight", "how to lose weight fast", "what is the meaning of life",
        "are you a robot", "sing me a song", "book a flight to {country}",
        "what's the stock price of {brand}", "how many calories in {dish}", "convert {n1} miles to km",
        "when do the {team} play next", "can you help me with my math homework",
        "what's the population of {country}", "i'm bored, tell me something interesting",
    ],
}

# Optional chatty frames. Product-search queries get one less often (FRAME_RATE in generate_data.py).
PREFIXES = ["hi, ", "hi ", "hey ", "hello, ", "hey there, ", "excuse me, ", "quick question, ", "um ",
            "can you help me? ", "i need help, ", "yo ", "good morning, ", "ok so ", "please ", "hello ",
            "question: ", "hi there! "]
SUFFIXES = ["?", "?", "??", "!", " please", " pls", " thanks", " thank you", " asap", ".", "...",
            " thx", " :)", " please help", " right now"]
